// From a stream of token ids to a stream of printable text: multi-byte characters split across
// tokens are held back until complete, and generation stops at the first stop string (which is
// not printed). Text that might be the start of a stop string waits until it is decided.
import { Effect, Stream } from "effect"
import type { Encoding } from "../tokenizer/tokenizer.ts"

export interface TextOptions {
  readonly stop: readonly string[]
}

/** Text deltas for `tokens`; ends at a stop string, at the end of `tokens`, whichever is first. */
export const streamText = <E, R>(encoding: Encoding, tokens: Stream.Stream<number, E, R>, options: TextOptions): Stream.Stream<string, E, R> =>
  Stream.suspend(() => {
    const ids: number[] = []
    let printed = 0 // characters of the decoded text already emitted
    let stopped = false
    const hold = Math.max(0, ...options.stop.map((s) => s.length - 1))
    const emit = (final: boolean): string => {
      let text = encoding.decode(ids)
      if (!final) text = text.replace(/\uFFFD+$/, "") // an incomplete character: wait for its other bytes
      const hit = options.stop.map((s) => text.indexOf(s, Math.max(0, printed - s.length + 1))).filter((i) => i >= 0)
      if (hit.length > 0) {
        stopped = true
        const end = Math.min(...hit)
        const out = text.slice(printed, Math.max(printed, end))
        printed = Math.max(printed, end)
        return out
      }
      const safeEnd = final ? text.length : Math.max(printed, text.length - hold)
      const out = text.slice(printed, safeEnd)
      printed = safeEnd
      return out
    }
    return tokens.pipe(
      Stream.takeWhile(() => !stopped),
      Stream.map((id) => {
        ids.push(id)
        return emit(false)
      }),
      Stream.concat(Stream.fromEffect(Effect.sync(() => (stopped ? "" : emit(true))))),
      Stream.filter((s) => s !== "")
    )
  })
