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
  /** What the column should hold; strings (utf8) when absent. */
  readonly expected?: string
}> {
  override get message(): string {
    return `corpus file ${this.path}: column '${this.column}' holds ${this.found}, expected ${this.expected ?? "strings (utf8)"}`
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

// ---------------------------------------------------------------------------------------
// The Hub client and the shard cache.

export class ShardUnavailable extends Data.TaggedError("ShardUnavailable")<{
  readonly url: string
  /** The last HTTP status, when the server answered at all. */
  readonly status?: number
  readonly retries: number
  readonly reason: string
}> {
  override get message(): string {
    const last = this.status === undefined ? this.reason : `HTTP ${this.status}`
    return `cannot fetch ${this.url} (${last}, ${this.retries} retries); check the network or the endpoint and run again: ` +
      `bytes already downloaded are kept`
  }
}

export class ShardNotFound extends Data.TaggedError("ShardNotFound")<{
  readonly url: string
}> {
  override get message(): string {
    return `${this.url} does not exist (HTTP 404); check the dataset name, data.revision and the shard path`
  }
}

export class ShardForbidden extends Data.TaggedError("ShardForbidden")<{
  readonly url: string
  readonly status: number
}> {
  override get message(): string {
    return `${this.url} refused access (HTTP ${this.status}); set HF_TOKEN to a token that can read this dataset ` +
      `(for a gated dataset, accept its terms on the Hub first)`
  }
}

export class ShardCorrupt extends Data.TaggedError("ShardCorrupt")<{
  readonly url: string
  readonly expectedSha256: string
  readonly actualSha256: string
  readonly expectedSize: number
  readonly actualSize: number
  readonly attempts: number
}> {
  override get message(): string {
    return `${this.url} arrived damaged ${this.attempts} times (expected ${this.expectedSize} bytes, sha256 ${this.expectedSha256.slice(0, 12)}…; ` +
      `got ${this.actualSize} bytes, sha256 ${this.actualSha256.slice(0, 12)}…); the bad copy was deleted, try again later`
  }
}

export class ShardCacheError extends Data.TaggedError("ShardCacheError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `shard cache ${this.path}: ${this.reason}; check free space and permissions of data.cache_dir`
  }
}

export class ShardCacheFull extends Data.TaggedError("ShardCacheFull")<{
  readonly shard: string
  readonly needed: number
  readonly capBytes: number
  readonly heldBytes: number
}> {
  override get message(): string {
    const gb = (n: number) => (n / 1e9).toFixed(2)
    return `shard ${this.shard} needs ${gb(this.needed)} GB but the cache cap is ${gb(this.capBytes)} GB and running jobs hold ` +
      `${gb(this.heldBytes)} GB; raise data.cache_max_gb or select fewer data.shards`
  }
}

export type HubError = ShardUnavailable | ShardNotFound | ShardForbidden | ShardCorrupt | ShardCacheError | ShardCacheFull

// ---------------------------------------------------------------------------------------
// Tokenisation workers and the token cache.

export class TokenizeWorkerFailed extends Data.TaggedError("TokenizeWorkerFailed")<{
  readonly reason: string
}> {
  override get message(): string {
    return `a tokenizer worker failed (${this.reason}); run again with data.workers = 0 to tokenise on the main thread`
  }
}

export class TokenCacheError extends Data.TaggedError("TokenCacheError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `token cache ${this.path}: ${this.reason}; delete the file (it is rebuilt) or set data.token_cache to false`
  }
}

export type ParquetError = ParquetFileMissing | ParquetCorrupt | ParquetMissingColumn | ParquetColumnType
export type DataError =
  | ParquetError
  | CursorOutOfRange
  | EmptySplit
  | InvalidDataOption
  | HubError
  | TokenizeWorkerFailed
  | TokenCacheError
