export { LOG_LEVELS, LogLevel, Logger, LoggerOptions, createLogger } from './logger';
export { REDACTED, redactSecrets } from './redact';
