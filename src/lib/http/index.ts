/**
 * The one outbound HTTP client of cbc-jwt (Vault, the Kubernetes API, a fleet's replicas and
 * Prometheus, a trusted issuer's JWKS): deadline, body cap, no redirects, verified TLS,
 * secrets kept out of messages, one failure type with a closed `kind`.
 */
export { createHttpClient, requestOnce, type HttpAnswer, type HttpClient, type HttpClientOptions, type HttpRequest } from './client.js'
export { HTTP_CALL_FAILURE_KINDS, HttpCallError, type HttpCallFailureKind } from './http-call-error.js'
export { parseJsonBody, type JsonBody } from './json-body.js'
export { redactSecrets } from './redact.js'
