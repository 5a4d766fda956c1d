import type { Command } from './commands/command.js'

/** The top-level help: every command with its summary, the keyset sources, exit codes. */
export function topHelp(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length))
  return `Usage: cbc-jwt <command> [options]

Manage the JWT keyset of the CBC-Ω² API: create, validate, rotate, revoke, issue and verify
tokens, check the key-age SLA, verify a rotation on live instances, and count rejections
in the service's logs.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Where the keyset comes from (every command but verify-rotation, failures and serve):
  --keyset-file PATH   a file (writes are atomic; the file's mode is kept, new files 0600)
  -                    stdin, and the result goes to stdout:
                       kubectl get secret cbc-secrets -o jsonpath='{.data.jwt-keyset}' | base64 -d \\
                         | cbc-jwt rotate - > keyset.json
  (neither)            the configured backend, as the service finds it: --backend file|vault|kubernetes
                       > CBC_JWT_BACKEND (file); file: CBC_JWT_KEYSET_FILE; vault: VAULT_ADDR,
                       VAULT_TOKEN, CBC_JWT_VAULT_MOUNT, CBC_JWT_VAULT_PATH, ...; kubernetes:
                       the Secret through the API server (kubeconfig or in-cluster),
                       CBC_JWT_KUBERNETES_NAMESPACE, _SECRET (cbc-secrets), _KEY (jwt-keyset)
  Every write also keeps a last good copy apart, which keyset restore puts back even after the
  keyset was deleted: the Secret cbc-jwt-last-good (CBC_JWT_KUBERNETES_LAST_GOOD_SECRET), the
  Vault path ...-last-good (CBC_JWT_VAULT_LAST_GOOD_PATH), the sibling file NAME.last-good.json.
Settings: built-in defaults < environment < flags. CBC_JWT_NOW=<RFC 3339> pins the clock
(a testing aid).

Exit status: 0 success, 1 failed check / refused / invalid keyset / backend error, 2 bad usage.
Run "cbc-jwt <command> --help" for a command's options.`
}

/** Help for a command group (`cbc-jwt keyset`, `cbc-jwt token`). */
export function groupHelp(group: string, commands: readonly Command[]): string {
  const members = commands.filter((c) => c.name.startsWith(`${group} `))
  const width = Math.max(...members.map((c) => c.name.length))
  return `Usage: cbc-jwt ${group} <${members.map((c) => c.name.slice(group.length + 1)).join('|')}> [options]

${members.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run "cbc-jwt ${group} <command> --help" for a command's options.`
}
