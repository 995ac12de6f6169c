/**
 * Express (and plain `node:http` + `next`) mapped onto the adapter core: the parts the
 * `/express` and `/mcp` middlewares share. No `req.auth` type augmentation here, so `/mcp`
 * (where the MCP SDK declares its own `req.auth`) can use it.
 * @internal
 */
import type { NextFunction, Request, Response } from 'express';
import type { Adapter } from '../adapter-core.ts';
import { PREFLIGHT_STATUS, abandon, isOpen } from '../adapter-core.ts';
import { exposeHeaders } from '../cors.ts';
import type { RequestLike } from '../request.ts';

/** Maps an Express (or plain node:http) request onto the core's request shape. */
export function toRequestLike(req: Request): RequestLike {
  return {
    method: req.method,
    url: req.originalUrl ?? req.url,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    protocol: (req.socket as { encrypted?: boolean } | undefined)?.encrypted ? 'https' : 'http',
    socket: req.socket,
    body: (req as { body?: unknown }).body, // set when a body parser ran before this middleware
  };
}

/** One Express request: what the adapter core calls {@link Adapter}'s context. @internal */
export interface ExpressCall {
  req: Request;
  res: Response;
  next: NextFunction;
}

/**
 * Everything of the Express adapter but how it refuses and accepts (which `/express` and
 * `/mcp` answer differently). @internal
 */
export const EXPRESS_BASE: Omit<Adapter<ExpressCall, void>, 'refuse' | 'accept'> = {
  method: ({ req }) => req.method,
  header: ({ req }, name) => req.headers[name],
  request: ({ req }) => toRequestLike(req),
  open: ({ res }) => isOpen(res),
  drop: ({ res }) => abandon(res),
  preflight({ res }) {
    res.statusCode = PREFLIGHT_STATUS;
    res.setHeader('Content-Length', '0');
    res.end();
  },
  expose({ res }) {
    res.setHeader(
      'Access-Control-Expose-Headers',
      exposeHeaders(res.getHeader('Access-Control-Expose-Headers')),
    );
  },
  fail: ({ next }, error) => next(error),
  broken({ res }) {
    // Only a host whose `next` throws gets here (Express catches its handlers' errors).
    try {
      if (isOpen(res)) {
        res.statusCode = 500;
        res.end();
      }
    } catch {
      // nothing more can be done for this response
    }
  },
};
