// Why this file exists: byte-pair encoding costs grow faster than linearly in the length of
// one pre-tokenised piece (a 50,000-letter run without spaces takes about a second, a
// megabyte would take minutes). Cutting long text into bounded chunks before BPE keeps
// encoding time and memory proportional to the input, and cutting at the right places keeps
// the tokens identical to encoding the whole text at once.

/**
 * Longest stretch of text handed to BPE in one call. Ordinary prose is cut only where it
 * makes no difference (see `splitForBpe`), so this cap only changes tokens for text that has
 * no word boundary within this many characters, such as base64 blobs or minified code.
 */
export const MAX_BPE_CHUNK_CHARS = 4096

const isWhitespace = (code: number): boolean =>
  code === 0x20 || (code >= 0x09 && code <= 0x0d) || code === 0x85 || code === 0xa0 ||
  code === 0x1680 || (code >= 0x2000 && code <= 0x200a) || code === 0x2028 || code === 0x2029 ||
  code === 0x202f || code === 0x205f || code === 0x3000

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff

/**
 * A cut before index `i` is invisible to the GPT pre-tokenisers (r50k, cl100k, o200k) when
 * `text[i]` is a single space between two non-space characters: every one of their regex
 * alternatives either starts a new piece at such a space (" word", " 123", " !") or never
 * reaches across it, so the pieces on both sides come out the same.
 */
const isInvisibleCut = (text: string, i: number): boolean =>
  text.charCodeAt(i) === 0x20 &&
  !isWhitespace(text.charCodeAt(i - 1)) &&
  i + 1 < text.length &&
  !isWhitespace(text.charCodeAt(i + 1))

/**
 * Split `text` into consecutive chunks of at most `maxChars` UTF-16 units whose
 * concatenation is `text`. Prefers invisible cuts (same tokens as the unsplit text), searching
 * back as far as half a chunk; otherwise cuts hard, never between the two halves of a
 * surrogate pair, so every chunk is valid Unicode and the byte sequence is unchanged.
 */
export const splitForBpe = (text: string, maxChars: number = MAX_BPE_CHUNK_CHARS): string[] => {
  if (text.length <= maxChars) return [text]
  const chunks: string[] = []
  let start = 0
  while (text.length - start > maxChars) {
    let cut = -1
    const earliest = start + Math.max(1, Math.floor(maxChars / 2))
    for (let i = start + maxChars; i >= earliest; i--) {
      if (isInvisibleCut(text, i)) {
        cut = i
        break
      }
    }
    if (cut === -1) {
      cut = start + maxChars
      if (isHighSurrogate(text.charCodeAt(cut - 1))) cut -= 1
    }
    chunks.push(text.slice(start, cut))
    start = cut
  }
  chunks.push(text.slice(start))
  return chunks
}
