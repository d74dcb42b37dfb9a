import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { NextFunction, Request, Response } from 'express';
import type { Config } from '../config';
import type { ProxyTrust } from './client-ip';

/** HTTPS (TLS 1.2 or later) when a certificate is configured, plain HTTP otherwise. */
export function createHttpServer(config: Config, app: http.RequestListener): http.Server {
  if (!config.tlsCertFile || !config.tlsKeyFile) return http.createServer(app);
  return https.createServer(
    { cert: fs.readFileSync(config.tlsCertFile), key: fs.readFileSync(config.tlsKeyFile), minVersion: 'TLSv1.2' },
    app,
  );
}

const HSTS = 'max-age=31536000; includeSubDomains';

/** HSTS on every response that arrived over TLS (ours or a trusted proxy's), never on plain HTTP. */
export function strictTransportSecurity(trust: ProxyTrust) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (trust.isSecure(req)) res.setHeader('Strict-Transport-Security', HSTS);
    next();
  };
}

/** A production server that neither terminates TLS nor sits behind a declared TLS proxy. */
export function transportWarning(config: Config): string | undefined {
  if (config.nodeEnv !== 'production' || config.tlsCertFile || config.trustProxy.length > 0) return undefined;
  return (
    'NO TLS: set TLS_CERT_FILE and TLS_KEY_FILE, or declare the TLS-terminating proxy ' +
    'in TRUST_PROXY. Tokens and passwords are crossing the network in clear text.'
  );
}
