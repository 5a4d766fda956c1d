/**
 * The first member name that appears twice in one object of `json` (text that `JSON.parse`
 * accepted), or undefined. `JSON.parse` keeps the last of the two silently, while a reviewer of
 * the document (or another reader) may go by the first: a keyset must not mean two things
 * (RFC 7493, I-JSON, makes unique names a must). One pass over the text: names are read where
 * an object expects one, string values are skipped whole.
 */
export function duplicateMember(json: string): string | undefined {
  // Per open object, the names seen in it; `null` for an open array.
  const open: Array<Set<string> | null> = []
  let nameNext = false
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i)
    if (c === QUOTE) {
      let end = i + 1
      let escaped = false
      for (let d = json.charCodeAt(end); d !== QUOTE; d = json.charCodeAt(end)) {
        if (d === BACKSLASH) {
          escaped = true
          end += 2
        } else end++
      }
      if (nameNext) {
        // Escapes decoded: "a\u0062" and "ab" are one name.
        const name = escaped ? (JSON.parse(json.slice(i, end + 1)) as string) : json.slice(i + 1, end)
        const names = open.at(-1)!
        if (names.has(name)) return name
        names.add(name)
        nameNext = false
      }
      i = end
    } else if (c === OPEN_OBJECT) {
      open.push(new Set())
      nameNext = true
    } else if (c === OPEN_ARRAY) open.push(null)
    else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) open.pop()
    else if (c === COMMA) nameNext = open.at(-1) instanceof Set
  }
  return undefined
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const COMMA = 0x2c
