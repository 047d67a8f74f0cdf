// Why this file exists: every way the data path can fail, as tagged errors carrying the
// facts (which file, which row group, which option) and a one-line message saying what to
// do. The CLI prints `message`; tests match on `_tag` and the fields.
import { Data } from "effect"
import type { DataCursor } from "./cursor.ts"

export class ParquetFileMissing extends Data.TaggedError("ParquetFileMissing")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `corpus file ${this.path} cannot be opened (${this.reason}); check the path or download the shard again`
  }
}

export class ParquetCorrupt extends Data.TaggedError("ParquetCorrupt")<{
  readonly path: string
  /** Absent when the footer itself is unreadable, so no row group could be located. */
  readonly rowGroup?: number
  readonly reason: string
}> {
  override get message(): string {
    const where = this.rowGroup === undefined ? `corpus file ${this.path}` : `corpus file ${this.path}: row group ${this.rowGroup}`
    return `${where} is not readable parquet (${this.reason}); the file is truncated or damaged, download it again`
  }
}

export class ParquetMissingColumn extends Data.TaggedError("ParquetMissingColumn")<{
  readonly path: string
  readonly column: string
  readonly found: ReadonlyArray<string>
}> {
  override get message(): string {
    return `corpus file ${this.path} has no '${this.column}' column (columns: ${this.found.join(", ") || "none"}); ` +
      `documents must be in a string column named '${this.column}', as in FineWeb`
  }
}

export class ParquetColumnType extends Data.TaggedError("ParquetColumnType")<{
  readonly path: string
  readonly column: string
  readonly found: string
}> {
  override get message(): string {
    return `corpus file ${this.path}: column '${this.column}' holds ${this.found}, expected strings (utf8)`
  }
}

export class CursorOutOfRange extends Data.TaggedError("CursorOutOfRange")<{
  readonly cursor: DataCursor
  readonly reason: string
}> {
  override get message(): string {
    const c = this.cursor
    return `data cursor (shard ${c.shard}, row group ${c.rowGroup}, row ${c.row}, token ${c.tokenOffset}) does not fit this corpus: ` +
      `${this.reason}; resume with the corpus and tokenizer the run started with`
  }
}

export class EmptySplit extends Data.TaggedError("EmptySplit")<{
  readonly split: "train" | "val"
  readonly valFraction: number
}> {
  override get message(): string {
    return `the ${this.split} split has no documents (val_fraction ${this.valFraction}); ` +
      (this.split === "val" ? "raise data.val_fraction" : "lower data.val_fraction below 1")
  }
}

export class ValidationSetEmpty extends Data.TaggedError("ValidationSetEmpty")<{
  readonly tokens: number
  readonly batch: number
  readonly context: number
}> {
  override get message(): string {
    return `the validation split holds ${this.tokens} tokens, fewer than one batch of ${this.batch}×${this.context}; ` +
      `raise data.val_fraction or lower train.batch / model.context`
  }
}

export class InvalidDataOption extends Data.TaggedError("InvalidDataOption")<{
  readonly option: string
  readonly value: unknown
  readonly expected: string
}> {
  override get message(): string {
    return `data option ${this.option} = ${JSON.stringify(this.value)} is invalid: expected ${this.expected}`
  }
}

export type ParquetError = ParquetFileMissing | ParquetCorrupt | ParquetMissingColumn | ParquetColumnType
export type DataError = ParquetError | CursorOutOfRange | EmptySplit | InvalidDataOption
