// GPT-2's tokenizer files as Hugging Face ships them (vocab.json + merges.txt for the slow
// tokenizer, tokenizer.json for the `tokenizers` library's fast one), rebuilt from the tiktoken
// rank table we tokenise with, so an exported model loads in `transformers` with its tokenizer
// and no download.
//
// Two facts make this possible. First, GPT-2's BPE ranks are its token ids: token 256 + i is made
// by merge line i, so merges.txt is the ranks in order. Second, each merge can be recovered from
// the table alone: run byte-level BPE on a token's bytes using only the merges ranked below it,
// and exactly two pieces remain; those two are the merge that made it.
//
// vocab.json spells tokens with GPT-2's byte-to-unicode map (every byte a printable character:
// the 188 printable Latin-1 bytes stand for themselves, the other 68 are shifted to U+0100 and
// up, which is why a leading space shows as "Ġ").

/** A rank table as tiktoken-style libraries give it: id → text (valid UTF-8) or raw bytes. */
export type RankTable = ReadonlyArray<string | ReadonlyArray<number>>

/** GPT-2's byte → printable character table. */
export const byteToUnicode = (): string[] => {
  const printable: number[] = []
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b)
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b)
  for (let b = 0xae; b <= 0xff; b++) printable.push(b)
  const table: string[] = new Array(256)
  for (const b of printable) table[b] = String.fromCodePoint(b)
  let shifted = 0
  for (let b = 0; b < 256; b++) if (table[b] === undefined) table[b] = String.fromCodePoint(256 + shifted++)
  return table
}

const utf8 = new TextEncoder()
const bytesOf = (entry: string | ReadonlyArray<number>): Uint8Array => (typeof entry === "string" ? utf8.encode(entry) : Uint8Array.from(entry))

/**
 * The merge that made token `id`: BPE on its bytes with only lower-ranked merges allowed, which
 * must leave exactly two pieces. `rankOf` maps a byte string (Latin-1 key) to its id.
 */
const mergeFor = (bytes: Uint8Array, id: number, rankOf: ReadonlyMap<string, number>): [string, string] => {
  let parts = Array.from(bytes, (b) => String.fromCharCode(b))
  for (;;) {
    let best = -1
    let bestRank = id
    for (let i = 0; i + 1 < parts.length; i++) {
      const rank = rankOf.get(parts[i] + parts[i + 1])
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank
        best = i
      }
    }
    if (best < 0) break
    parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)]
  }
  if (parts.length !== 2) throw new Error(`token ${id} does not split into one merge (${parts.length} pieces): not a GPT-2-style rank table`)
  return [parts[0], parts[1]]
}

export interface Gpt2TokenizerFiles {
  readonly "vocab.json": string
  readonly "merges.txt": string
  readonly "tokenizer.json": string
  readonly "tokenizer_config.json": string
  readonly "special_tokens_map.json": string
}

/**
 * GPT-2's fast-tokenizer description, as the `tokenizers` library serialises it: byte-level BPE
 * (GPT-2's regex splits the text, each piece's bytes are spelled with the byte-to-unicode map,
 * then merged by rank), no prefix space, and <|endoftext|> as the one added special token.
 */
const tokenizerJson = (vocab: Readonly<Record<string, number>>, merges: ReadonlyArray<string>, eot: number) => {
  const byteLevel = (addPrefixSpace: boolean, trimOffsets: boolean) => ({ type: "ByteLevel", add_prefix_space: addPrefixSpace, trim_offsets: trimOffsets, use_regex: true })
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [{ id: eot, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel(false, true),
    post_processor: byteLevel(true, false),
    decoder: byteLevel(true, true),
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges }
  }
}

/** vocab.json, merges.txt, tokenizer.json and the two small configs of GPT-2's tokenizer, from its rank table. */
export const gpt2TokenizerFiles = (ranks: RankTable, eot: number, modelMaxLength: number): Gpt2TokenizerFiles => {
  const show = byteToUnicode()
  const latin1 = (bytes: Uint8Array) => Array.from(bytes, (b) => String.fromCharCode(b)).join("")
  const spell = (key: string) => Array.from(key, (c) => show[c.charCodeAt(0)]).join("")
  const keys = ranks.map((entry) => latin1(bytesOf(entry)))
  const rankOf = new Map(keys.map((key, id) => [key, id] as const))
  const vocab: Record<string, number> = {}
  keys.forEach((key, id) => (vocab[spell(key)] = id))
  vocab["<|endoftext|>"] = eot
  const merges = ["#version: 0.2"]
  for (let id = 0; id < keys.length; id++) {
    if (keys[id].length < 2) continue
    const [left, right] = mergeFor(bytesOf(ranks[id]), id, rankOf)
    merges.push(`${spell(left)} ${spell(right)}`)
  }
  const special = { bos_token: "<|endoftext|>", eos_token: "<|endoftext|>", unk_token: "<|endoftext|>" }
  return {
    "vocab.json": JSON.stringify(vocab),
    "merges.txt": merges.join("\n") + "\n",
    "tokenizer.json": JSON.stringify(tokenizerJson(vocab, merges.slice(1), eot)),
    "tokenizer_config.json": JSON.stringify({ tokenizer_class: "GPT2Tokenizer", model_max_length: modelMaxLength, add_prefix_space: false, ...special }, null, 2) + "\n",
    "special_tokens_map.json": JSON.stringify(special, null, 2) + "\n"
  }
}
