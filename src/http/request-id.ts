import { randomUUID } from 'node:crypto';
import express, { NextFunction, Request, Response } from 'express';
import type { Logger } from '../logging';

/** A client-sent id is kept only when it is short and plain, so it cannot forge log lines. */
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

declare module 'express-serve-static-core' {
  interface Request {
    /** The request id: the client's X-Request-Id when acceptable, else a fresh UUID. */
    requestId: string;
    /** A logger that stamps every line with `requestId`. */
    log: Logger;
  }
}

const BASE_LOGGER = Symbol('bastion.baseLogger');
const REQUEST_LOGGER = Symbol('bastion.requestLogger');
type WithLoggers = Request & { [BASE_LOGGER]?: Logger; [REQUEST_LOGGER]?: Logger };

// `req.log` is the request's child logger, made on first use: most requests log only their final line.
Object.defineProperty(express.request, 'log', {
  configurable: true,
  get(this: WithLoggers): Logger {
    return (this[REQUEST_LOGGER] ??= this[BASE_LOGGER]!.child({ requestId: this.requestId }));
  },
});

/** Where a route puts the path the request line logs, when the real one holds a secret. */
export const LOGGED_PATH = 'bastionLoggedPath';

/** Accepts or generates `X-Request-Id`, echoes it, and logs one line per finished request. */
export function requestIds(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const offered = req.get('x-request-id');
    req.requestId = offered && ACCEPTABLE_REQUEST_ID.test(offered) ? offered : randomUUID();
    (req as WithLoggers)[BASE_LOGGER] = logger;
    res.setHeader('X-Request-Id', req.requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      if (!logger.isLevelEnabled('info')) return;
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      // The path only: a query string may carry a GraphQL GET query and its variables. A route whose
      // path is a capability (an upload URL) names what to log instead, in res.locals[LOGGED_PATH].
      req.log.info(
        {
          method: req.method,
          path: (res.locals[LOGGED_PATH] as string | undefined) ?? req.originalUrl.split('?')[0],
          ip: req.clientIp,
          status: res.statusCode,
          durationMs: Math.round(durationMs * 10) / 10,
        },
        'request',
      );
    });
    next();
  };
}
