export { Logger, LoggerOptions, createLogger } from './logger';
export { REDACTED, redactSecrets } from './redact';
