import { pino, type DestinationStream, type Logger } from 'pino'

/**
 * JSON lines on stdout. Authorization and cookies are redacted wherever they appear, and a
 * request is logged by its path only, so a token passed in a query string never reaches a log.
 * An HTTP parse error carries the raw bytes of the refused request (`rawPacket`, Authorization
 * header included), which fastify logs at trace level: redacted too.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'cbc-jwt' },
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', 'authorization', 'token', 'err.rawPacket'],
        censor: '[redacted]',
      },
      serializers: {
        req: (req: { method?: string; url?: string; ip?: string }) => ({
          method: req.method,
          path: req.url?.split('?')[0],
          remoteAddress: req.ip,
        }),
      },
    },
    destination,
  )
}
