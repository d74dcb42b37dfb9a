/** PostgreSQL's query_canceled: a statement_timeout, a lock_timeout's sibling, or a cancel request. */
const QUERY_CANCELED = '57014';

/**
 * True when PostgreSQL cancelled a statement because it ran past `statement_timeout`
 * (BASTION_DB_STATEMENT_TIMEOUT_MS): the request asked for more than the server gives one request,
 * not a bug. Looks through TypeORM's `driverError`, graphql-js's `originalError` and `cause`.
 */
export function isStatementTimeout(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth += 1) {
    const { code, message, driverError, originalError, cause } = current as {
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
      originalError?: unknown;
      cause?: unknown;
    };
    // Only the timeout: a cancel sent on purpose (a shutdown) carries the same code with another message.
    if (code === QUERY_CANCELED && typeof message === 'string' && message.includes('statement timeout')) return true;
    current = driverError ?? originalError ?? cause;
  }
  return false;
}
