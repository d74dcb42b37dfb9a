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

/** A path segment longer than this is opaque (a capability token, as in an upload's URL): logged cut. */
const LONGEST_LOGGED_SEGMENT = 64;

/**
 * A request path as logs may show it: a segment longer than 64 characters keeps its first 36 (an
 * id) and loses the rest, so a URL that is itself a credential (an upload's token) never reaches a log.
 */
export function loggablePath(path: string): string {
  return path
    .split('/')
    .map((segment) => (segment.length > LONGEST_LOGGED_SEGMENT ? `${segment.slice(0, 36)}…` : segment))
    .join('/');
}

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
      // The path only: a query string may carry a GraphQL GET query and its variables (or a file URL's signature).
      req.log.info(
        {
          method: req.method,
          path: loggablePath(req.originalUrl.split('?')[0]),
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
