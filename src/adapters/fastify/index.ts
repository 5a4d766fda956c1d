/**
 * `cbc-jwt/fastify`: the Fastify plugin. Importing this entry also brings the type
 * augmentation (`app.authenticate`, `app.requireScope`, `request.auth`).
 */
import './types.js'
import { cbcJwtPlugin } from './plugin.js'

export { cbcJwtPlugin, type CbcJwtFastifyOptions } from './plugin.js'
export type { CbcJwtHook } from './types.js'
export type { CbcJwtAuth } from '../../lib/core/adapter.js'
export { authOf } from '../../lib/core/adapter.js'
export default cbcJwtPlugin
