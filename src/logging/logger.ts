import pino, { DestinationStream, Logger } from 'pino';
import { redactSecrets } from './redact';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: LogLevel;
  pretty: boolean;
  /** Where JSON lines go; stdout by default. Tests pass a collector. */
  destination?: DestinationStream;
  /**
   * The standard stream logs go to when no destination is given: stdout for the server (log
   * collectors read it), stderr for every other CLI command, whose stdout is its result.
   */
  stream?: 'stdout' | 'stderr';
}

/**
 * JSON lines with UTC timestamps; secrets redacted by key name at any depth; errors serialised
 * with their cause chain. Pretty colour output only when asked for (development) and when
 * pino-pretty is installed, which the production image does not carry.
 */
export function createLogger(options: LoggerOptions): Logger {
  const base: pino.LoggerOptions = {
    level: options.level,
    base: { service: 'bastion' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { log: (object) => redactSecrets(object) as Record<string, unknown> },
    serializers: { err: serializeError, error: serializeError },
  };
  if (options.destination) return pino(base, options.destination);
  const fd = options.stream === 'stderr' ? 2 : 1;
  if (options.pretty && canLoad('pino-pretty')) {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', destination: fd },
      },
    });
  }
  return fd === 1 ? pino(base) : pino(base, pino.destination({ dest: fd, sync: true }));
}

/**
 * What an error may say in the log: never the SQL it ran (`query`), the values bound to it
 * (`parameters`: user input in clear), the row data PostgreSQL quotes back (`detail`, `where`),
 * or a stack trace (the standard: no stack, SQL or secret in a log). Where it was raised survives
 * as `origin`, one frame of Bastion's own code, and the request id ties it to the request.
 */
const UNLOGGED_ERROR_FIELDS = new Set(['stack', 'query', 'internalQuery', 'parameters', 'detail', 'where']);

/** Errors with their cause chain, redacted like everything else, minus the fields above at any depth. */
function serializeError(error: Error): unknown {
  const serialized = pino.stdSerializers.errWithCause(error) as unknown as Record<string, unknown>;
  const parameters = serialized.parameters;
  const origin = ownFrame(framesOf(error));
  const redacted = redactSecrets(withoutUnloggedFields(serialized)) as Record<string, unknown>;
  return { ...redacted, ...(origin ? { origin } : {}), ...(Array.isArray(parameters) ? { parameterCount: parameters.length } : {}) };
}

function withoutUnloggedFields(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUnloggedFields);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !UNLOGGED_ERROR_FIELDS.has(key))
      .map(([key, inner]) => [key, withoutUnloggedFields(inner)]),
  );
}

/** The stack's frames only: its head repeats the message, which a client may have written. */
function framesOf(error: Error): string {
  const stack = typeof error.stack === 'string' ? error.stack : '';
  const message = typeof error.message === 'string' ? error.message : '';
  const at = message ? stack.indexOf(message) : -1;
  return at >= 0 ? stack.slice(at + message.length) : stack;
}

/**
 * The first frame in Bastion's own code, as src/…:line:column (dist/src/… when compiled). Only
 * real frames ("    at …") count, so a multi-line message cannot supply one, and the path is
 * cut at its last src/, so no install folder (/usr/src/app/…) shows.
 */
function ownFrame(stack: string): string | undefined {
  for (const line of stack.split('\n')) {
    if (!/^\s+at /.test(line)) continue;
    const location = /\(?([^\s()]+:\d+:\d+)\)?$/.exec(line.trim())?.[1];
    if (!location) continue;
    const own = /(?:^|\/)((?:dist\/)?src\/(?:(?!\/src\/)[^:])+:\d+:\d+)$/.exec(location);
    if (own) return own[1];
  }
  return undefined;
}

function canLoad(moduleName: string): boolean {
  try {
    require.resolve(moduleName);
    return true;
  } catch {
    return false;
  }
}
