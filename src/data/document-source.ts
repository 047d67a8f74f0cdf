// Why this file exists: the trainer needs an endless, reproducible stream of documents from
// one side of the train/validation split, and must be able to restart it from a cursor.
// `DocumentSource` is that stream. Where the rows come from (parquet shards on disk, the
// shipped corpus, documents held in memory for a test) is a `RowGroupStore`; the epoch
// order, the split filter and the cursor logic live here once, for every store.
import { Context, Effect, Layer, Option, Schema, type Scope, Stream } from "effect"
import { fileURLToPath } from "node:url"
import { DataCursor } from "./cursor.ts"
import { CursorOutOfRange, type DataError, EmptySplit, InvalidDataOption } from "./errors.ts"
import type { ColumnFilter } from "./filters.ts"
import {
  makeParquetDecoder,
  openParquetShard,
  type ParquetLocation,
  type RowGroupDocuments,
  type ShardReadError,
  type TokenArray
} from "./parquet-reader.ts"
import { epochOrder } from "./shuffle.ts"
import { splitOf } from "./split.ts"

export const Split = Schema.Literal("train", "val")
export type Split = typeof Split.Type

export interface SplitOptions {
  readonly split: Split
  /** Share of documents (by id hash) held out for validation, in [0, 1]. */
  readonly valFraction: number
}

/** Consecutive documents of one side of the split, all from one row group, in row order. */
export interface DocBatch {
  /** The documents' text; empty when the store gives `tokens` instead. */
  readonly texts: ReadonlyArray<string>
  /**
   * Each document's token ids followed by end-of-text, when the store holds them already (the
   * token cache); the packer then does not tokenise. Made with the encoding named `tokenizer`.
   */
  readonly tokens?: ReadonlyArray<TokenArray>
  readonly tokenizer?: string
  readonly ids: ReadonlyArray<string>
  /**
   * Row of each document inside its row group. Needed because the split filter leaves gaps:
   * `firstRow + i` is not the row of `texts[i]`.
   */
  readonly rows: ReadonlyArray<number>
  readonly shard: number
  readonly rowGroup: number
  /** Row of `texts[0]`. */
  readonly firstRow: number
  readonly epoch: number
}

export interface ShardLayout {
  /** A path or label, for messages. */
  readonly name: string
  readonly rowGroupRows: ReadonlyArray<number>
}

/** Random access to the row groups of a list of shards: what a document source reads from. */
export interface RowGroupStore {
  readonly shards: ReadonlyArray<ShardLayout>
  readonly read: (shard: number, rowGroup: number) => Effect.Effect<RowGroupDocuments, DataError>
  /** Set when `read` gives tokens instead of texts: the encoding they were made with. */
  readonly tokenizer?: string
}

export interface DocumentsOptions {
  /** Stop at the end of the cursor's epoch instead of starting the next one (for held-out sets). */
  readonly singlePass?: boolean
}

export interface DocumentSourceShape extends SplitOptions {
  readonly shards: ReadonlyArray<ShardLayout>
  /** Where epoch 0 begins for this seed: row 0 of the first row group in that epoch's order. */
  readonly start: (seed: number) => DataCursor
  /**
   * Documents from `cursor` on: the rest of the cursor's row group from `cursor.row`, then the
   * following row groups in the order of (seed, epoch), then the next epochs in new orders,
   * forever (or to the end of the epoch with `singlePass`). Row groups without documents on
   * this side of the split are skipped. Fails with `EmptySplit` when a whole epoch has none.
   */
  readonly documents: (cursor: DataCursor, options?: DocumentsOptions) => Stream.Stream<DocBatch, DataError>
  /** The same corpus, the other side of the split (shares open files and the decoder). */
  readonly withSplit: (split: Split) => DocumentSourceShape
}

interface Unit {
  readonly shard: number
  readonly rowGroup: number
  readonly rows: number
}

interface Visit {
  readonly epoch: number
  /** Index into the epoch's order of units. */
  readonly position: number
  readonly startRow: number
}

const invalidSplitOptions = (options: SplitOptions): InvalidDataOption | undefined =>
  Number.isFinite(options.valFraction) && options.valFraction >= 0 && options.valFraction <= 1
    ? undefined
    : new InvalidDataOption({ option: "data.val_fraction", value: options.valFraction, expected: "a number in [0, 1]" })

export const checkSplitOptions = (options: SplitOptions): Effect.Effect<void, InvalidDataOption> => {
  const invalid = invalidSplitOptions(options)
  return invalid === undefined ? Effect.void : Effect.fail(invalid)
}

const isCursor = Schema.is(DataCursor)

/** A document source over any row-group store; pure: nothing is read until a stream runs. */
export const makeDocumentSource = (store: RowGroupStore, options: SplitOptions): DocumentSourceShape => {
  const units: Unit[] = []
  const unitIndex: number[][] = store.shards.map((shard, s) =>
    shard.rowGroupRows.map((rows, rowGroup) => units.push({ shard: s, rowGroup, rows }) - 1)
  )
  const unitCount = units.length

  const start = (seed: number): DataCursor => {
    const first = unitCount === 0 ? undefined : units[epochOrder(unitCount, seed, 0)[0]]
    return { shard: first?.shard ?? 0, rowGroup: first?.rowGroup ?? 0, row: 0, tokenOffset: 0, epoch: 0, seed }
  }

  const select = (docs: RowGroupDocuments, unit: Unit, visit: Visit): DocBatch => {
    const texts: string[] = []
    const tokens: TokenArray[] = []
    const ids: string[] = []
    const rows: number[] = []
    const given = docs.tokens
    for (let row = visit.startRow; row < docs.ids.length; row++) {
      if (splitOf(docs.ids[row], options.valFraction) !== options.split) continue
      if (given !== undefined) {
        const t = given[row]
        if (t === null) continue
        tokens.push(t)
      } else {
        const text = docs.texts[row]
        if (text === null) continue
        texts.push(text)
      }
      ids.push(docs.ids[row])
      rows.push(row)
    }
    const where = { ids, rows, shard: unit.shard, rowGroup: unit.rowGroup, firstRow: rows[0] ?? visit.startRow, epoch: visit.epoch }
    return given !== undefined ? { ...where, texts: [], tokens, tokenizer: store.tokenizer } : { ...where, texts }
  }

  const documents = (cursor: DataCursor, documentsOptions: DocumentsOptions = {}): Stream.Stream<DocBatch, DataError> =>
    Stream.suspend(() => {
      const singlePass = documentsOptions.singlePass === true
      const invalid = invalidSplitOptions(options)
      if (invalid !== undefined) return Stream.fail(invalid)
      if (!isCursor(cursor)) {
        return Stream.fail(new CursorOutOfRange({ cursor, reason: "its fields must be non-negative integers" }))
      }
      if (unitCount === 0) return singlePass ? Stream.empty : Stream.fail(new EmptySplit(options))
      const startUnit = unitIndex[cursor.shard]?.[cursor.rowGroup]
      if (startUnit === undefined) {
        return Stream.fail(new CursorOutOfRange({
          cursor,
          reason: `the corpus has ${store.shards.length} shard(s) and shard ${cursor.shard} has ` +
            `${store.shards[cursor.shard]?.rowGroupRows.length ?? 0} row group(s)`
        }))
      }
      if (cursor.row > 0 && cursor.row >= units[startUnit].rows) {
        return Stream.fail(new CursorOutOfRange({ cursor, reason: `the row group has ${units[startUnit].rows} rows` }))
      }

      // The order of the current epoch, recomputed only when the epoch changes.
      let orderEpoch = cursor.epoch
      let order = epochOrder(unitCount, cursor.seed, orderEpoch)
      const orderOf = (epoch: number): number[] => {
        if (epoch !== orderEpoch) {
          orderEpoch = epoch
          order = epochOrder(unitCount, cursor.seed, epoch)
        }
        return order
      }

      const first: Visit = { epoch: cursor.epoch, position: order.indexOf(startUnit), startRow: cursor.row }
      const after = (visit: Visit): Visit | undefined =>
        visit.position + 1 < unitCount
          ? { epoch: visit.epoch, position: visit.position + 1, startRow: 0 }
          : singlePass ? undefined : { epoch: visit.epoch + 1, position: 0, startRow: 0 }

      // Tracks whether the epoch under way began at its first row group and has produced a
      // document yet: a complete epoch with none means the stream would spin forever.
      const watch = { fromStart: first.position === 0 && first.startRow === 0, sawDocuments: false }

      return Stream.unfold(first as Visit | undefined, (visit) =>
        visit === undefined ? Option.none() : Option.some([visit, after(visit)] as const)
      ).pipe(
        Stream.mapEffect((visit) => {
          const unit = units[orderOf(visit.epoch)[visit.position]]
          return store.read(unit.shard, unit.rowGroup).pipe(Effect.map((docs) => [visit, select(docs, unit, visit)] as const))
        }),
        Stream.mapEffect(([visit, batch]) => {
          if (visit.position === 0 && visit.startRow === 0) {
            watch.fromStart = true
            watch.sawDocuments = false
          }
          watch.sawDocuments ||= batch.rows.length > 0
          const emptyEpoch = visit.position === unitCount - 1 && watch.fromStart && !watch.sawDocuments
          return emptyEpoch && !singlePass ? Effect.fail(new EmptySplit(options)) : Effect.succeed(batch)
        }),
        Stream.filter((batch) => batch.rows.length > 0)
      )
    })

  return {
    split: options.split,
    valFraction: options.valFraction,
    shards: store.shards,
    start,
    documents,
    withSplit: (split) => makeDocumentSource(store, { ...options, split })
  }
}

// ---------------------------------------------------------------------------------------
// Stores and layers.

export interface SourceDocument {
  readonly id: string
  readonly text: string
}

/** Documents held in memory, cut into row groups of `rowsPerGroup`: the fixture store for tests. */
export const memoryStore = (
  shards: ReadonlyArray<ReadonlyArray<SourceDocument>>,
  rowsPerGroup: number = 4
): RowGroupStore => {
  const groups = shards.map((docs) => {
    const cut: SourceDocument[][] = []
    for (let i = 0; i < docs.length; i += rowsPerGroup) cut.push(docs.slice(i, i + rowsPerGroup))
    return cut
  })
  return {
    shards: groups.map((g, s) => ({ name: `memory shard ${s}`, rowGroupRows: g.map((rows) => rows.length) })),
    read: (shard, rowGroup) =>
      Effect.sync(() => {
        const rows = groups[shard][rowGroup]
        return { texts: rows.map((d) => d.text), ids: rows.map((d) => d.id) }
      })
  }
}

export interface ParquetSourceOptions extends SplitOptions {
  /** Local paths or remote files, in order: the cursor's `shard` indexes this list. */
  readonly paths: ReadonlyArray<ParquetLocation>
  /** Keep only rows passing every filter. */
  readonly filters?: ReadonlyArray<ColumnFilter>
}

/** A row-group store over parquet shards (local files or remote ones read by ranges). */
export const openParquetStore = (
  options: Omit<ParquetSourceOptions, keyof SplitOptions>
): Effect.Effect<RowGroupStore, ShardReadError, Scope.Scope> =>
  Effect.gen(function* () {
    const decoder = yield* makeParquetDecoder
    const shards = yield* Effect.forEach(options.paths, (path) => openParquetShard(decoder, path, { filters: options.filters }))
    return {
      shards: shards.map((s) => ({ name: s.path, rowGroupRows: s.rowGroupRows })),
      read: (shard, rowGroup) => shards[shard].readDocuments(rowGroup)
    }
  })

/** Parquet shards on disk or on a server, in the order given: the cursor's `shard` indexes this list. */
export const openParquetSource = (options: ParquetSourceOptions): Effect.Effect<DocumentSourceShape, DataError, Scope.Scope> =>
  Effect.gen(function* () {
    yield* checkSplitOptions(options)
    return makeDocumentSource(yield* openParquetStore(options), options)
  })

/** The corpus that ships with the repository, found from this file so any working directory works. */
export const shippedCorpusPath: string = fileURLToPath(new URL("../../data/corpus.parquet", import.meta.url))

export class DocumentSource extends Context.Tag("glassbox/DocumentSource")<DocumentSource, DocumentSourceShape>() {
  /**
   * Parquet shards (FineWeb schema: a string `text` column, ideally an `id` column): local
   * paths, or `RemoteParquet` files read by byte ranges without downloading them.
   */
  static readonly parquet = (options: ParquetSourceOptions): Layer.Layer<DocumentSource, DataError> =>
    Layer.scoped(DocumentSource, openParquetSource(options))

  /** data/corpus.parquet (Moby-Dick and the State of the Union addresses), or `path` if given. */
  static readonly shipped = (
    options: SplitOptions & { readonly path?: string; readonly filters?: ReadonlyArray<ColumnFilter> }
  ): Layer.Layer<DocumentSource, DataError> =>
    DocumentSource.parquet({ ...options, paths: [options.path ?? shippedCorpusPath] })

  /** Any row-group store (the token cache, a test's own). */
  static readonly fromStore = (
    store: Effect.Effect<RowGroupStore, DataError, Scope.Scope>,
    options: SplitOptions
  ): Layer.Layer<DocumentSource, DataError> =>
    Layer.scoped(DocumentSource, Effect.zipRight(checkSplitOptions(options), Effect.map(store, (s) => makeDocumentSource(s, options))))

  /**
   * Documents from memory: a flat list is one shard, a list of lists is several. Each shard is
   * cut into row groups of `rowsPerGroup` (default 4) so shuffling and cursors behave as on disk.
   */
  static readonly fromDocuments = (
    docs: ReadonlyArray<SourceDocument> | ReadonlyArray<ReadonlyArray<SourceDocument>>,
    options: SplitOptions & { readonly rowsPerGroup?: number }
  ): Layer.Layer<DocumentSource, InvalidDataOption> => {
    const shards = (docs.length > 0 && Array.isArray(docs[0]) ? docs : [docs]) as ReadonlyArray<ReadonlyArray<SourceDocument>>
    return Layer.effect(
      DocumentSource,
      checkSplitOptions(options).pipe(Effect.as(makeDocumentSource(memoryStore(shards, options.rowsPerGroup), options)))
    )
  }
}
