import type { NextFunction, Request, Response } from 'express';
import { TIMEOUT_MESSAGE } from '../errors';
import { DEADLINE_ANSWERED, sendError } from './http-errors';

/**
 * BASTION_REQUEST_TIMEOUT_MS: a request not answered within `timeoutMs` gets HTTP 504 with TIMEOUT
 * at once, so the app can tell "too slow" from "no network" and retry. The work already under way
 * is not cancelled (each of its statements still ends within the statement timeout), so a
 * mutation may yet commit: the app treats TIMEOUT like a lost response.
 */
export function requestDeadline(timeoutMs: number) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const timer = setTimeout(() => {
      if (res.headersSent) return;
      res.locals[DEADLINE_ANSWERED] = true;
      req.log.warn({ timeoutMs }, 'request stopped: past BASTION_REQUEST_TIMEOUT_MS');
      sendError(res, 'TIMEOUT', TIMEOUT_MESSAGE);
    }, timeoutMs);
    // A request ends one of these ways: answered (finish) or the client went away (close).
    res.once('finish', () => clearTimeout(timer));
    res.once('close', () => clearTimeout(timer));
    next();
  };
}
