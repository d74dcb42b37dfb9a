import { QueryRunnerAlreadyReleasedError } from 'typeorm';

/** Socket failures on the way to PostgreSQL (Node's codes). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a server that is away or going away: the connection exceptions of class 08 (not
 * 08P01, a protocol violation: a bug, not an outage), 57P01–57P03 (shut down by an operator,
 * crashed, starting up or shutting down), 53300 (no connection slot free).
 */
const UNAVAILABLE_SQLSTATE = /^(0800[0-46]|57P0[1-3]|53300)$/;

/** What pg and its pool say, without a code, when a connection dies or cannot be had in time. */
const UNAVAILABLE_MESSAGE =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable)/;

/** 55000 is a broad class; only with this message is it a database closed to connections (ALLOW_CONNECTIONS false). */
const NOT_ACCEPTING_CONNECTIONS = /is not currently accepting connections/;

/**
 * True when `error` says PostgreSQL cannot be reached or dropped the connection (a restart, a
 * failover, an exhausted pool): the same request can succeed once it is back, so the client gets
 * SERVICE_UNAVAILABLE, not INTERNAL_SERVER_ERROR. Looks through the wrappers an error travels in:
 * TypeORM's `driverError`, graphql-js's `thrownValue` (a value thrown from another realm, such as
 * Node's own errors inside a test sandbox, is not `instanceof Error` there), and `cause`.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  // A few levels suffice; the bound guards against a cycle.
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth += 1) {
    const { code, message, driverError, thrownValue, originalError, cause } = current as {
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
      thrownValue?: unknown;
      originalError?: unknown;
      cause?: unknown;
    };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
    if (typeof message === 'string' && (UNAVAILABLE_MESSAGE.test(message) || (code === '55000' && NOT_ACCEPTING_CONNECTIONS.test(message))))
      return true;
    // TypeORM releases a transaction's query runner by itself when its connection fails; the
    // transaction's next statement then finds it released.
    if (current instanceof QueryRunnerAlreadyReleasedError) return true;
    // originalError: Apollo wraps what a plugin hook throws in a GraphQLError.
    current = driverError ?? thrownValue ?? originalError ?? cause;
  }
  return false;
}
