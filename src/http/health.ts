import type { Request, Response } from 'express';
import type { DataSource } from 'typeorm';

/** Liveness: the process is up and serving. Never touches the database, so a DB outage does not get us killed. */
export function healthz(_req: Request, res: Response): void {
  res.json({ status: 'ok' });
}

/**
 * Readiness: the database answers and every migration is applied. A load balancer stops sending
 * traffic while this says 503, and resumes once the database is back.
 */
export function readyz(dataSource: DataSource, isShuttingDown: () => boolean) {
  return async (req: Request, res: Response): Promise<void> => {
    if (isShuttingDown()) {
      // Tell the load balancer first, while in-flight requests finish.
      res.status(503).json({ status: 'unavailable', reason: 'shutting down' });
      return;
    }
    try {
      await dataSource.query('SELECT 1');
      if (await dataSource.showMigrations()) {
        res.status(503).json({ status: 'unavailable', reason: 'migrations pending: run `bastion migrate`' });
        return;
      }
      res.json({ status: 'ready' });
    } catch (error) {
      req.log.warn({ err: error }, 'readiness check failed');
      res.status(503).json({ status: 'unavailable', reason: 'database unreachable' });
    }
  };
}
