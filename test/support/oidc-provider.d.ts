// oidc-provider ships no types; the tests use its documented constructor and Koa callback only.
declare module 'oidc-provider' {
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>)
    on(event: string, listener: (...args: unknown[]) => void): this
    callback(): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void
  }
}
