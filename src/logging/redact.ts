export const REDACTED = '[redacted]';

/**
 * Key names whose values never reach a log, at any depth: credentials, tokens, one-time codes,
 * secrets and keys. Matching by name (not by path) keeps a new field from leaking just because
 * nobody listed its path.
 */
const SENSITIVE_KEY = new RegExp(
  [
    '^(authorization|proxy-authorization|cookie|set-cookie|x-api-key)$',
    'pass(word|wd|phrase)',
    'token',
    'secret',
    'otp',
    'recovery.?codes?',
    'private.?key',
    '^keys?$',
    '.keys?$',
    'credential',
    '^codes?$',
  ].join('|'),
  'i',
);

/**
 * Error codes are safe to log under a key named `code`: UPPER_SNAKE (Bastion's, Node's ECONNRESET)
 * and PostgreSQL's five-character SQLSTATE (23503). OTPs (six digits) and recovery codes never
 * look like either.
 */
const ERROR_CODE = /^(?:[A-Z][A-Z0-9_]*|[0-9][0-9A-Z]{4})$/;

function isSensitive(key: string, value: unknown): boolean {
  if (!SENSITIVE_KEY.test(key)) return false;
  if (/^codes?$/i.test(key) && typeof value === 'string' && ERROR_CODE.test(value)) return false;
  return true;
}

/** A copy of `value` with every sensitive key's value replaced; cycles and depth are bounded. */
export function redactSecrets(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8 || seen.has(value)) return '[…]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1, seen));
  // Errors are left whole here: the logger's error serializer redacts them after flattening.
  if (value instanceof Error) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    copy[key] = isSensitive(key, item) ? REDACTED : redactSecrets(item, depth + 1, seen);
  }
  return copy;
}
