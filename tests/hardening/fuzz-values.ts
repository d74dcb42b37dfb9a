import fc from 'fast-check';

/**
 * Values for the fuzzer: strings, numbers and dates at the edges (unicode, injections, sizes, out
 * of range), values of the wrong shape, prototype keys, and the `Draw` that takes them from
 * fast-check inside a generated request.
 */

/** Unicode that breaks naive code: NUL, lone surrogates, bidi overrides, stacked combining marks, ZWJ emoji, BOM, line separators. */
export const UNICODE_EDGES = [
  '\u0000',
  'a\u0000b',
  '\uD800',
  '\uDFFF',
  'x\uDBFFy',
  '\uDC00\uD800',
  '\u202Eevil\u202C',
  '\u200F\u200E\u061C',
  'e\u0301\u0308\u0323\u0301\u0308\u0323',
  'Z\u0336\u0337\u0338\u0335',
  '\u{1F469}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}',
  '\u{1F3F3}\uFE0F\u200D\u{1F308}',
  '\uFEFF',
  '\u2028\u2029',
  '\r\n\t\v\f',
  '\u0085',
  '\uFFFD',
  '\uFFFF',
  '\u{10FFFF}',
  'İı',
  'ﬁ',
  'Ⅻ',
  '\u0CF1\u0CF2',
  '\u{E0041}',
  '٣٤٥',
];
/** Injection attempts for SQL, LIKE, TypeORM named parameters, templates and paths (none of them looks like a leak). */
const INJECTIONS = [
  "x' OR 1=1--",
  '"; DROP TABLE posts;--',
  '\\',
  '%',
  '_%_',
  '$1',
  ':p0',
  ':...p0',
  '${7*7}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '%s%s%n',
  '\\u0000',
  'null',
  '__proto__',
  'constructor',
  'NaN',
  '-0',
  '1e309',
  ' ',
];

const codeUnits = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 24 }).map((units) => String.fromCharCode(...units));
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string({ maxLength: 30 }), weight: 3 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }), weight: 2 },
  // Any UTF-16 code unit, so lone surrogates too.
  { arbitrary: codeUnits, weight: 2 },
  { arbitrary: fc.constantFrom(...UNICODE_EDGES, ...INJECTIONS), weight: 4 },
  // An ordinary value with one edge case inside, so it passes a length or format check and goes further.
  {
    arbitrary: fc
      .tuple(fc.stringMatching(/^[a-z0-9.@-]{0,12}$/), fc.constantFrom(...UNICODE_EDGES), fc.stringMatching(/^[a-z0-9.@-]{0,12}$/))
      .map(([head, edge, tail]) => `${head}${edge}${tail}`),
    weight: 4,
  },
  {
    arbitrary: fc
      .tuple(fc.constantFrom('x', 'é', '\u{1F600}', '\u0000', '\uD800', 'e\u0301'), fc.integer({ min: 200, max: 40_000 }))
      .map(([unit, times]) => unit.repeat(times)),
    weight: 1,
  },
);

const EMAIL_EDGES = [
  'a@b',
  'a@b.c',
  '"a b"@example.com',
  'x@example.com\u0000',
  `${'a'.repeat(300)}@example.com`,
  '@example.com',
  'a@',
  'ÄÖÜ@exämple.com',
  'a+tag@example.com',
  'A@EXAMPLE.COM',
  'a@[127.0.0.1]',
  'a@example.com\r\nBcc: b@example.com',
];
export const email = fc.oneof(fc.emailAddress(), fc.constantFrom(...EMAIL_EDGES), hostileString);
const DATE_EDGES = [
  '2026-13-45T99:99:99Z',
  '0000-00-00T00:00:00Z',
  'now',
  '',
  '+275760-09-13T00:00:00.000Z',
  '-271821-04-20T00:00:00.000Z',
  '+275760-09-13T00:00:00.001Z',
  '2026-03-01',
  '2026-03-01T12:00:00+99:99',
  '1e10',
  '2026-02-30T00:00:00Z',
  '９９９９-01-01',
];
export const dateTime = fc.oneof(
  { arbitrary: fc.date({ noInvalidDate: true }).map((date) => date.toISOString()), weight: 6 },
  { arbitrary: fc.constantFrom(...DATE_EDGES), weight: 1 },
  { arbitrary: fc.integer(), weight: 1 },
);
export const CIDR_EDGES = [
  '203.0.113.0/24',
  '2001:db8::/32',
  '198.51.100.7',
  '300.1.1.1/33',
  '10.0.0.0/-1',
  '1.2.3.4/999999999999',
  'fe80::1%eth0',
  '::ffff:203.0.113.9',
  '203.0.113.0/24/8',
  '',
];
export const hostileInt = fc.oneof(
  { arbitrary: fc.integer({ min: -3, max: 120 }), weight: 8 },
  {
    arbitrary: fc.constantFrom(0, -1, 100, 101, 2147483647, -2147483648, 2147483648, -2147483649, 9007199254740992, 1e21, 0.5, -0, 1e308),
    weight: 1,
  },
);
/** Number tokens a document may hold: out of Int range, overflowing a double, or not numbers at all. */
export const NUMBER_TOKENS = [
  '99999999999999999999',
  '-99999999999999999999',
  '1e400',
  '-1e-400',
  '2147483648',
  '-2147483649',
  '0',
  '-0',
  '01',
  '0x1F',
  '1_000',
  '.5',
  '5.',
  '1e',
  '1.7976931348623157e309',
  '0.0000000000000000000001',
  'NaN',
  'Infinity',
];

/** A value that fits no input type: wrong shapes, and objects carrying prototype keys. */
export const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  hostileInt,
  fc.double(),
  fc.boolean(),
  fc.constantFrom([], {}, [1, 'a', null], { a: 1 }, [[[[]]]], null),
  fc.constant(null).map(() => prototypeKeys({ isAdmin: true })),
  fc.jsonValue({ maxDepth: 3 }),
);

/** An object with own `__proto__`, `constructor` and `prototype` keys, as JSON.parse makes them (a literal would set the prototype instead). */
export function prototypeKeys(payload: Record<string, unknown>, into: Record<string, unknown> = {}): Record<string, unknown> {
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    Object.defineProperty(into, key, {
      value: key === 'constructor' ? { prototype: payload } : payload,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return into;
}

/** Strings that trip PostgreSQL, encoders and validators: NUL, lone surrogates, bidi and combining marks, sizes. */
export const EDGE_STRINGS = [
  '\u0000',
  'a\u0000b',
  '\uD800',
  'x\uDFFFy',
  '\u202Eevil\u202C',
  'e\u0301\u0301\u0301',
  '\u{1F469}\u200D\u{1F467}',
  '\uFEFF',
  '',
  ' ',
  'x'.repeat(5_000),
  "x' OR 1=1--",
  '%_\\',
  '\r\n',
  '\u2028',
];
export const EDGE_NUMBERS = [0, -1, 100, 101, 2147483647, -2147483648];

// ---------------------------------------------------------------------------------------------
// Drawing from fast-check inside a generator

/** Uniform: fast-check's integers lean to the ends of their range, which would turn every `chance` into a coin flip. */
const uniformInteger = (constraints: { min: number; max: number }) => fc.noBias(fc.integer(constraints));

/** Draws values from fast-check inside one generated value (fc.gen), so nested structures follow the seed. */
export class Draw {
  private readonly factories = new Map<fc.Arbitrary<unknown>, () => fc.Arbitrary<unknown>>();

  constructor(private readonly generate: fc.GeneratorValue) {}

  int(min: number, max: number): number {
    return this.generate(uniformInteger, { min, max });
  }

  chance(probability: number): boolean {
    return this.int(0, 9_999) < probability * 10_000;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }

  from<T>(arbitrary: fc.Arbitrary<T>): T {
    let factory = this.factories.get(arbitrary);
    if (!factory) this.factories.set(arbitrary, (factory = () => arbitrary));
    return this.generate(factory as () => fc.Arbitrary<T>);
  }
}
