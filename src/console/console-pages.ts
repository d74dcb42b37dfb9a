import fs from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { sendError } from '../http/http-errors';
import { PROJECT_ROOT } from '../project';

/** Where `npm run build` puts the console (index.html, assets/) and the account pages (account.html, account/). */
export const CONSOLE_BUILD_DIR = path.join(PROJECT_ROOT, 'dist', 'console');

/** Where each built part is served from: the pages' `<script>` and `<link>` name these paths. */
export const CONSOLE_PATH = '/console';
export const ACCOUNT_ASSETS_PATH = '/account';
export const ACCOUNT_PAGES = ['/verify-email', '/reset-password'] as const;

/**
 * The pages' Content-Security-Policy: their own scripts, styles, images and fonts, requests to
 * their own origin only (the GraphQL API), no inline script or style, no eval, no framing, no
 * plugins, forms post only here.
 */
export const PAGE_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** A year: every asset's name holds its content's hash, so a new build is a new URL. */
const ASSET_MAX_AGE_SECONDS = 365 * 24 * 60 * 60;

/** The headers of every page and asset: the policy, no framing, no referrer (account pages carry a token in their URL). */
function pageHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Content-Security-Policy', PAGE_POLICY);
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  next();
}

/**
 * A built page, read at each request (a few hundred bytes, for admins and email links): a rebuild
 * is served at once, without a restart. Missing, it answers 503 with what to run.
 */
function htmlPage(file: string): RequestHandler {
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    res.setHeader('Cache-Control', 'no-store');
    fs.readFile(file, (error, html) => {
      if (error) sendError(res, 'SERVICE_UNAVAILABLE', 'The console is not built: run `npm run build`.');
      else res.type('html').send(html);
    });
  };
}

/**
 * Hashed assets from one folder: cached a year, immutable (`private` ones only by the browser, so
 * a shared cache never hands them to a network the gate refuses); an unknown name is 404 and not
 * cached (during a rolling deploy it may exist on the next instance), never a page.
 */
function assets(folder: string, cache: 'public' | 'private'): RequestHandler[] {
  return [
    express.static(folder, {
      index: false,
      redirect: false,
      dotfiles: 'deny',
      lastModified: false,
      setHeaders: (res) => res.setHeader('Cache-Control', `${cache}, max-age=${ASSET_MAX_AGE_SECONDS}, immutable`),
    }),
    (req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      sendError(res, 'NOT_FOUND', `No such file: ${req.path}. Assets are named by the build; reload the page.`);
    },
  ];
}

/**
 * The console's mounts: its assets under /console/assets, and its one page for every other path
 * under /console (the app routes in the browser). Both only for admitted addresses.
 */
export function consoleMounts(buildDir: string, admitted: (req: Request) => boolean): Record<string, RequestHandler[]> {
  const gate: RequestHandler = (req, res, next) => {
    if (admitted(req)) return next();
    res.setHeader('Cache-Control', 'no-store');
    sendError(res, 'FORBIDDEN', 'The console is not available from this network (ADMIN_ALLOWED_CIDRS).');
  };
  return {
    [`${CONSOLE_PATH}/assets`]: [gate, pageHeaders, ...assets(path.join(buildDir, 'assets'), 'private')],
    [CONSOLE_PATH]: [gate, pageHeaders, htmlPage(path.join(buildDir, 'index.html'))],
  };
}

/** The account pages (links in emails), and their assets under /account. */
export function accountRoutes(buildDir: string): { readonly page: RequestHandler[]; readonly assets: RequestHandler[] } {
  return {
    page: [pageHeaders, htmlPage(path.join(buildDir, 'account.html'))],
    assets: [pageHeaders, ...assets(path.join(buildDir, 'account'), 'public')],
  };
}
