#!/usr/bin/env node
// `npm start` on a fresh clone: the two-command start (npm ci && npm start) serves on a
// development keyset, which it asks for explicitly (--dev) only when no keyset is configured.
// With CBC_JWT_KEYSET_FILE, CBC_JWT_BACKEND or CBC_JWT_DEV_KEYSET set (even empty: the service
// then says what is wrong), the service runs exactly as configured and generates nothing.
const configured = ['CBC_JWT_KEYSET_FILE', 'CBC_JWT_BACKEND', 'CBC_JWT_DEV_KEYSET'].some((name) => process.env[name] !== undefined)
if (!configured) process.argv.push('--dev')
await import('../dist/server/main.js')
