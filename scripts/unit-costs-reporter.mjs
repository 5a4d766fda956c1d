// A node:test reporter for the shards of `npm run test:unit`: no output of its own, one JSON
// document at the end — each file's time (its top-level tests' durations added up), which the
// next run balances its shards by, and the counts for the closing line.
export default async function* unitCosts(source) {
  const costs = {}
  const counts = { tests: 0, passed: 0, failed: 0, skipped: 0, todo: 0 }
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue
    const { data } = event
    if (data.nesting === 0 && data.file) costs[data.file] = (costs[data.file] ?? 0) + (data.details?.duration_ms ?? 0)
    if (data.details?.type === 'suite') {
      // A suite fails on its own only when a hook of it failed: that counts as a failure too.
      if (event.type === 'test:fail' && data.details?.error?.failureType === 'hookFailed') counts.failed++
      continue
    }
    counts.tests++
    if (data.skip !== undefined) counts.skipped++
    else if (data.todo !== undefined) counts.todo++
    else if (event.type === 'test:pass') counts.passed++
    else counts.failed++
  }
  yield `${JSON.stringify({ costs, counts })}\n`
}
