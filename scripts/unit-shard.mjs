// One shard of `npm run test:unit`: every test file named on the command line, imported into
// this one process (scripts/run-tests.mjs starts it under tsx). node:test runs their top-level
// suites one after another, as it runs a single file; src/ is loaded and compiled once per
// shard instead of once per file, which was most of the unit tier's CPU.
import path from 'node:path'
import { pathToFileURL } from 'node:url'

for (const file of process.argv.slice(2)) await import(pathToFileURL(path.resolve(file)).href)
