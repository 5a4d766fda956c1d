/**
 * The test tiers. `npm test` runs everything. `npm run test:unit` (the inner loop, seconds, no
 * build) sets CBC_JWT_TEST_TIER=unit, leaves out test/e2e, test/deploy and test/packaging, and
 * skips the suites marked with this option: those that start the service or the built CLI as
 * processes, or test a process itself (its exit, its memory limit, what it loads).
 *
 * @example
 * describe('attack: oversized token (over HTTP, real service)', PROCESS_LEVEL, () => { … })
 * describe('cbc-jwt failures', { concurrency: true, ...PROCESS_LEVEL }, () => { … })
 */
export const PROCESS_LEVEL: { skip: string | false } = {
  skip: process.env.CBC_JWT_TEST_TIER === 'unit' ? 'starts processes: npm test runs it, npm run test:unit does not' : false,
}
