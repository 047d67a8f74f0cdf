// Why this file exists: the data cursor is the one piece of data-loader state a checkpoint
// stores. Resuming from it must reproduce exactly the batches an uninterrupted run would have
// seen, so it names the position physically: which file, which row group in it, which row,
// and how many of that document's tokens were already consumed, plus the epoch and seed
// that fix the row-group order.
import { Schema } from "effect"

const Index = Schema.Int.pipe(Schema.nonNegative())

export const DataCursor = Schema.Struct({
  /** Index into the source's list of shard files. */
  shard: Index,
  /** Physical row group inside that shard (not the position in the shuffled order). */
  rowGroup: Index,
  /** Row inside that row group of the document the next batch starts in. */
  row: Index,
  /** Tokens of that document (its end-of-text included) already emitted as window starts. */
  tokenOffset: Index,
  /** Passes over the corpus completed before this one. */
  epoch: Index,
  /** Seed of the per-epoch row-group shuffle. */
  seed: Schema.Int
})
export type DataCursor = typeof DataCursor.Type

/** Same position, compared field by field. */
export const sameCursor = (a: DataCursor, b: DataCursor): boolean =>
  a.shard === b.shard && a.rowGroup === b.rowGroup && a.row === b.row &&
  a.tokenOffset === b.tokenOffset && a.epoch === b.epoch && a.seed === b.seed
