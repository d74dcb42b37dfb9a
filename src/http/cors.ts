import type { NextFunction, Request, Response } from 'express';

/**
 * CORS for an explicit list of browser origins (the Apollo Sandbox in development). Anything else
 * gets no CORS headers, so browsers keep other sites' pages from reading responses.
 */
export function corsAllowlist(origins: readonly string[]) {
  const allowed = new Set(origins);
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.get('origin');
    // Always: a shared cache must not serve one origin's answer to another.
    res.setHeader('Vary', 'Origin');
    if (origin && allowed.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader(
        'Access-Control-Allow-Headers',
        'authorization, content-type, apollo-require-preflight, x-apollo-operation-name, x-request-id',
      );
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
      res.setHeader('Access-Control-Max-Age', '600');
      res.setHeader('Access-Control-Expose-Headers', 'x-request-id');
    }
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    next();
  };
}
