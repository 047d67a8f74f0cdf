// Why this file exists: web corpora carry per-document quality signals (FineWeb's
// `language_score`, FineWeb-Edu's `int_score`), and keeping only the documents above a
// threshold is one of the cheapest ways to a better model. A filter is one comparison,
// written as text in a config ("int_score >= 3"), parsed once, checked against the file's
// columns when the file is opened, and applied row by row when a row group is read. A row
// that fails a filter is treated like a missing document: it keeps its row number, so
// cursors stay valid, but it is never trained on.
import * as arrow from "apache-arrow"
import { InvalidDataOption } from "./errors.ts"

export const FILTER_OPERATORS = [">=", "<=", "!=", "==", ">", "<"] as const
export type FilterOperator = typeof FILTER_OPERATORS[number]

export interface ColumnFilter {
  readonly column: string
  readonly op: FilterOperator
  /** Numbers compare numerically; anything else compares as text. */
  readonly value: number | string
}

/**
 * Parse `column op value`, e.g. "language_score >= 0.65", "int_score >= 3", "language == en"
 * or `dump != "CC-MAIN-2013-20"` (quotes optional). The option name is for the error message.
 */
export const parseFilter = (text: string, option: string = "data.filters"): ColumnFilter | InvalidDataOption => {
  // The value is a number, a bare word, or quoted text (quotes needed for spaces or symbols).
  const m = /^\s*([A-Za-z_][\w.]*)\s*(>=|<=|!=|==|=|>|<)\s*("[^"]*"|'[^']*'|[^\s<>=!"'][^\s]*)\s*$/.exec(text)
  if (m === null) {
    return new InvalidDataOption({ option, value: text, expected: `"column op value" with op one of ${FILTER_OPERATORS.join(" ")}, e.g. "int_score >= 3"` })
  }
  const raw = m[3]
  const quoted = /^"(.*)"$|^'(.*)'$/.exec(raw)
  const value = quoted !== null ? (quoted[1] ?? quoted[2]) : Number.isFinite(Number(raw)) && raw !== "" ? Number(raw) : raw
  const op = (m[2] === "=" ? "==" : m[2]) as FilterOperator
  return { column: m[1], op, value }
}

/** Parse a list of filters, failing on the first bad one. */
export const parseFilters = (texts: ReadonlyArray<string>, option: string = "data.filters"): ReadonlyArray<ColumnFilter> | InvalidDataOption => {
  const filters: ColumnFilter[] = []
  for (const [i, text] of texts.entries()) {
    const parsed = parseFilter(text, `${option}[${i}]`)
    if (parsed instanceof InvalidDataOption) return parsed
    filters.push(parsed)
  }
  return filters
}

export const formatFilter = (f: ColumnFilter): string => `${f.column} ${f.op} ${typeof f.value === "number" ? f.value : JSON.stringify(f.value)}`

/** The columns the filters read. */
export const filterColumns = (filters: ReadonlyArray<ColumnFilter>): ReadonlyArray<string> => [...new Set(filters.map((f) => f.column))]

const compare = (a: number | string, b: number | string): number => (a < b ? -1 : a > b ? 1 : 0)

const holds = (op: FilterOperator, order: number): boolean => {
  switch (op) {
    case ">=": return order >= 0
    case "<=": return order <= 0
    case ">": return order > 0
    case "<": return order < 0
    case "==": return order === 0
    case "!=": return order !== 0
  }
}

/**
 * Whether one cell passes. A missing value (null) passes nothing, so "score >= 3" never keeps
 * a document without a score. Int64 cells arrive as bigint and compare as numbers.
 */
export const passes = (filter: ColumnFilter, cell: unknown): boolean => {
  if (cell === null || cell === undefined) return false
  const value = typeof cell === "bigint" ? Number(cell) : cell
  if (typeof filter.value === "number") {
    const n = typeof value === "number" ? value : typeof value === "boolean" ? Number(value) : Number(value)
    return !Number.isNaN(n) && holds(filter.op, compare(n, filter.value))
  }
  return holds(filter.op, compare(String(value), filter.value))
}

/** Which filters a schema cannot serve: a missing column, or a numeric threshold on a non-numeric column. */
export const filterProblem = (filters: ReadonlyArray<ColumnFilter>, schema: arrow.Schema): string | undefined => {
  for (const filter of filters) {
    const field = schema.fields.find((f) => f.name === filter.column)
    if (field === undefined) return `filter "${formatFilter(filter)}" needs a '${filter.column}' column`
    const numeric = arrow.DataType.isInt(field.type) || arrow.DataType.isFloat(field.type) || arrow.DataType.isDecimal(field.type) ||
      arrow.DataType.isBool(field.type)
    if (typeof filter.value === "number" && !numeric && filter.op !== "==" && filter.op !== "!=") {
      return `filter "${formatFilter(filter)}" compares a number with column '${filter.column}' of type ${String(field.type)}`
    }
  }
  return undefined
}

/** For each row of `table`, whether it passes every filter. */
export const rowMask = (filters: ReadonlyArray<ColumnFilter>, table: arrow.Table): ReadonlyArray<boolean> => {
  const mask = new Array<boolean>(table.numRows).fill(true)
  for (const filter of filters) {
    const column = table.getChild(filter.column)
    for (let row = 0; row < table.numRows; row++) {
      if (mask[row]) mask[row] = passes(filter, column?.get(row) ?? null)
    }
  }
  return mask
}
