// Module hooks (node:module register) that append each URL the ESM loader loads to the file
// named by MODULE_TRACE_FILE. Run on the loader's thread, so they write, not post.
import fs from 'node:fs'

export async function load(url, context, nextLoad) {
  if (process.env.MODULE_TRACE_FILE) fs.appendFileSync(process.env.MODULE_TRACE_FILE, `${url}\n`)
  return nextLoad(url, context)
}
