/** GitHub's heading anchors of a Markdown page: lower case, punctuation dropped, spaces to '-', repeats numbered. Maps each to its heading's text. */
export function anchors(markdown: string): Map<string, string> {
  const seen = new Map<string, number>()
  const out = new Map<string, string>()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const m = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (!m) continue
    const text = m[1]!.replace(/`/g, '')
    let slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    if (n > 0) slug = `${slug}-${n}`
    out.set(slug, text)
  }
  return out
}
