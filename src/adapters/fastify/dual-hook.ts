import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { CbcJwtHook } from './types.js'

/**
 * Decides a request: true to let it go on, false once it has been answered (the reply sent).
 * A promise only when the decision has to wait (a threadpool check, a backend re-read).
 */
export type RequestDecision = (request: FastifyRequest, reply: FastifyReply) => boolean | Promise<boolean>

/**
 * A hook usable both ways a Fastify hook is called. Fastify passes `done`: a decision known at
 * once goes on through `done` with no promise and no microtask turn (most of what a cached
 * token's request cost in the hook); one that waits is returned as a promise, which fastify
 * waits for instead. Called with two arguments from a user's own async hook, it always returns
 * a promise. After an answer, `done` is never called and the promise settles only once the
 * reply is sent, so fastify never runs the route of a refused request.
 */
export function dualHook(decide: RequestDecision): CbcJwtHook {
  function hook(request: FastifyRequest, reply: FastifyReply): Promise<void>
  function hook(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): Promise<void> | undefined
  function hook(request: FastifyRequest, reply: FastifyReply, done?: HookHandlerDoneFunction): Promise<void> | undefined {
    const goOn = decide(request, reply)
    if (done === undefined || goOn instanceof Promise) {
      return Promise.resolve(goOn).then(async (proceed) => {
        if (!proceed) await reply
      })
    }
    if (goOn) done()
    return undefined
  }
  return hook
}
