// The KV v2 and login envelopes are read strictly: anything but the documented shape is
// undefined, which the backend answers as bad_response rather than a keyset or a token guessed.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseLoginEnvelope, parseReadEnvelope, parseWriteEnvelope } from '../../../../src/lib/backends/vault/kv2.js'

const metadata = { created_time: '2026-01-01T00:00:00Z', custom_metadata: null, deletion_time: '', destroyed: false, version: 3 }
const read = (data: unknown, meta: unknown = metadata) => parseReadEnvelope({ request_id: 'r', data: { data, metadata: meta } })

describe('parseReadEnvelope', () => {
  it('reads the fields, the version and whether a version without data is destroyed', () => {
    assert.deepEqual(read({ 'jwt-keyset': '{}' }), { fields: { 'jwt-keyset': '{}' }, version: 3, destroyed: false })
    assert.deepEqual(read(null, { ...metadata, deletion_time: '2026-01-02T00:00:00Z' }), { fields: null, version: 3, destroyed: false })
    assert.deepEqual(read(null, { ...metadata, deletion_time: '2026-01-02T00:00:00Z', destroyed: true }), {
      fields: null,
      version: 3,
      destroyed: true,
    })
    // A deletion_time still ahead (delete_version_after): Vault serves the data, and so do we.
    assert.deepEqual(read({ 'jwt-keyset': '{}' }, { ...metadata, deletion_time: '2099-01-01T00:00:00Z' })?.fields, { 'jwt-keyset': '{}' })
    assert.equal(read({}, { ...metadata, version: 0 })?.version, 0)
  })

  it('destroyed is read from its documented type only', () => {
    for (const destroyed of ['true', 1, 'yes', null]) assert.equal(read({}, { ...metadata, destroyed })?.destroyed, false, String(destroyed))
  })

  it('anything else is not an envelope', () => {
    const bad: unknown[] = [
      null,
      [],
      'data',
      { data: null },
      { data: [] },
      { data: [{ data: {}, metadata }] },
      { data: { data: {} } },
      { data: { data: {}, metadata: null } },
      { data: { data: {}, metadata: [metadata] } },
      { data: { data: {}, metadata: { ...metadata, version: undefined } } },
      { data: { data: {}, metadata: { ...metadata, version: '3' } } },
      { data: { data: {}, metadata: { ...metadata, version: 3.5 } } },
      { data: { data: {}, metadata: { ...metadata, version: -1 } } },
      { data: { data: {}, metadata: { ...metadata, version: 2 ** 53 } } },
      { data: { data: '{"jwt-keyset":"{}"}', metadata } },
      { data: { data: ['jwt-keyset'], metadata } },
      { data: { data: 1, metadata } },
    ]
    for (const json of bad) assert.equal(parseReadEnvelope(json), undefined, JSON.stringify(json))
  })
})

describe('parseWriteEnvelope', () => {
  it('the version written: a positive safe integer', () => {
    assert.equal(parseWriteEnvelope({ data: { created_time: 't', deletion_time: '', destroyed: false, version: 4 } }), 4)
    for (const version of [0, -1, 1.5, '4', null, 2 ** 53]) assert.equal(parseWriteEnvelope({ data: { version } }), undefined, String(version))
    for (const json of [null, [], { data: null }, { data: [4] }, { version: 4 }]) assert.equal(parseWriteEnvelope(json), undefined, JSON.stringify(json))
  })
})

describe('parseLoginEnvelope', () => {
  it('the token, its lease and whether it renews', () => {
    assert.deepEqual(parseLoginEnvelope({ auth: { client_token: 'hvs.x', lease_duration: 3600, renewable: true } }), {
      clientToken: 'hvs.x',
      leaseSeconds: 3600,
      renewable: true,
    })
    assert.deepEqual(parseLoginEnvelope({ auth: { client_token: 'hvs.x', lease_duration: 0 } }), { clientToken: 'hvs.x', leaseSeconds: 0, renewable: false })
    for (const renewable of ['true', 1, null])
      assert.equal(parseLoginEnvelope({ auth: { client_token: 'hvs.x', lease_duration: 1, renewable } })?.renewable, false)
  })

  it('no token, an empty one, or a lease that is not a whole number of seconds: no login', () => {
    const bad: unknown[] = [
      null,
      { auth: null },
      { auth: [] },
      { data: { client_token: 'hvs.x', lease_duration: 1 } },
      { auth: { lease_duration: 1 } },
      { auth: { client_token: '', lease_duration: 1 } },
      { auth: { client_token: 42, lease_duration: 1 } },
      { auth: { client_token: ['hvs.x'], lease_duration: 1 } },
      { auth: { client_token: 'hvs.x' } },
      { auth: { client_token: 'hvs.x', lease_duration: -1 } },
      { auth: { client_token: 'hvs.x', lease_duration: 1.5 } },
      { auth: { client_token: 'hvs.x', lease_duration: '3600' } },
    ]
    for (const json of bad) assert.equal(parseLoginEnvelope(json), undefined, JSON.stringify(json))
  })
})
