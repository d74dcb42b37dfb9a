import pino, { DestinationStream, Logger } from 'pino';
import { LogLevel } from '../config';
import { redactSecrets } from './redact';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: LogLevel;
  pretty: boolean;
  /** Where JSON lines go; stdout by default. Tests pass a collector. */
  destination?: DestinationStream;
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
  if (options.pretty && canLoad('pino-pretty')) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } } });
  }
  return pino(base);
}

/**
 * Errors with their cause chain, redacted like everything else, minus the bound parameters that
 * driver errors carry (TypeORM's QueryFailedError.parameters may hold user input in clear).
 */
function serializeError(error: Error): unknown {
  const serialized = pino.stdSerializers.errWithCause(error) as unknown as Record<string, unknown>;
  const { parameters, ...rest } = serialized;
  const redacted = redactSecrets(rest) as Record<string, unknown>;
  return Array.isArray(parameters) ? { ...redacted, parameterCount: parameters.length } : redacted;
}

function canLoad(moduleName: string): boolean {
  try {
    require.resolve(moduleName);
    return true;
  } catch {
    return false;
  }
}
