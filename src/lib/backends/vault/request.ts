import { parseJsonBody, type HttpClient, type JsonBody } from '../../http/index.js'

/** Vault's answer: its status and its JSON-or-nothing body. */
export interface VaultAnswer extends JsonBody {
  status: number
}

/** One Vault API call through the shared client; failures are `HttpCallError`s for `toFailure`. */
export async function vaultRequest(
  client: HttpClient,
  method: 'GET' | 'POST',
  path: string,
  init: { headers: Record<string, string>; body?: unknown; signal: AbortSignal },
): Promise<VaultAnswer> {
  const answer = await client.request({ method, path, headers: init.headers, signal: init.signal, ...(init.body === undefined ? {} : { json: init.body }) })
  return { status: answer.status, ...parseJsonBody(answer.text) }
}
