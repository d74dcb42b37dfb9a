import { Kind, parse } from 'graphql';
import { FrozenClock } from '../../../src/clock';
import { HitLog, HitWindow } from '../../../src/firewall/hit-log';
import { rootFieldCalls } from '../../../src/firewall/rate-limits';
import { createLogger } from '../../../src/logging';
import { LogCollector } from '../../support/log-collector';
import { PrefixTable, addressValue, containsAddress, formatCidr, parseCidr } from '../../../src/net/ip';
import { FirewallAction, FirewallRule } from '../../../src/firewall/firewall-rule.entity';
import { IpRules } from '../../../src/firewall/ip-rules';

const rule = (id: string, cidr: string, action: FirewallAction, expiresAt: Date | null = null) =>
  Object.assign(new FirewallRule(), { id, cidr, action, expiresAt, note: null, createdBy: null, createdAt: new Date(0) });

describe('CIDR parsing', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7/32'],
    ['203.0.113.77/24', '203.0.113.0/24'],
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:db8::1/32', '2001:db8::/32'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1/128'],
    ['::1', '::1/128'],
    ['::ffff:192.0.2.1', '192.0.2.1/32'],
    ['fe80::1:0:0:1/64', 'fe80::/64'],
  ])('canonicalises %s as %s', (input, canonical) => {
    expect(formatCidr(parseCidr(input)!)).toBe(canonical);
  });

  it.each(['', 'localhost', '300.1.1.1', '10.0.0.0/33', '2001:db8::/129', '10.0.0.0/8/8', '10.0.0.0/-1', '10.0.0.0/ 8', '1.2.3'])(
    'refuses %p',
    (input) => {
      expect(parseCidr(input)).toBeNull();
    },
  );

  it('reads an IPv4-mapped address however it is written as the IPv4 address', () => {
    for (const written of ['::ffff:1.2.3.4', '0:0:0:0:0:ffff:1.2.3.4', '::ffff:102:304', '0000:0000:0000:0000:0000:ffff:0102:0304']) {
      expect({ written, parsed: addressValue(written) }).toEqual({ written, parsed: addressValue('1.2.3.4') });
    }
  });

  it('reads an IPv6 address with an IPv4 tail', () => {
    expect(addressValue('64:ff9b::192.0.2.33')).toEqual(addressValue('64:ff9b::c000:221'));
    expect(containsAddress(parseCidr('64:ff9b::/96')!, addressValue('64:ff9b::192.0.2.33')!)).toBe(true);
  });
});

describe('PrefixTable (longest prefix wins)', () => {
  const table = new PrefixTable([
    [parseCidr('10.0.0.0/8')!, 'wide'],
    [parseCidr('10.1.0.0/16')!, 'narrow'],
    [parseCidr('10.1.2.3')!, 'host'],
    [parseCidr('2001:db8::/32')!, 'v6'],
  ] as const);

  it.each([
    ['10.9.9.9', 'wide'],
    ['10.1.9.9', 'narrow'],
    ['10.1.2.3', 'host'],
    ['::ffff:10.1.2.3', 'host'],
    ['11.0.0.1', undefined],
    ['2001:db8:1::5', 'v6'],
    ['2001:db9::5', undefined],
    ['not an ip', undefined],
  ])('%s → %s', (address, expected) => {
    expect(table.lookup(address)).toBe(expected);
  });

  it('keeps IPv4 and IPv6 apart (::a01:203 is not 10.1.2.3)', () => {
    expect(table.lookup('::a01:203')).toBeUndefined();
  });
});

describe('IpRules', () => {
  it('applies the most specific rule, else the default; DENY wins over ALLOW for the same network', () => {
    const rules = new IpRules(
      [
        rule('a', '198.51.100.0/24', FirewallAction.DENY),
        rule('b', '198.51.100.64/26', FirewallAction.ALLOW),
        rule('c', '192.0.2.0/24', FirewallAction.ALLOW),
        rule('d', '192.0.2.0/24', FirewallAction.DENY),
      ],
      'allow',
      0,
    );
    expect(rules.verdict('198.51.100.1')).toMatchObject({ action: 'deny', rule: { id: 'a' } });
    expect(rules.verdict('198.51.100.70')).toMatchObject({ action: 'allow', rule: { id: 'b' } });
    expect(rules.verdict('192.0.2.9')).toMatchObject({ action: 'deny', rule: { id: 'd' } });
    expect(rules.verdict('203.0.113.1')).toEqual({ action: 'allow', rule: null });
    expect(new IpRules([rule('b', '198.51.100.64/26', FirewallAction.ALLOW)], 'deny', 0).verdict('203.0.113.1')).toEqual({
      action: 'deny',
      rule: null,
    });
  });

  it('leaves expired rules out and knows when the next one expires', () => {
    const rules = new IpRules(
      [
        rule('soon', '198.51.100.0/24', FirewallAction.DENY, new Date(1_000)),
        rule('later', '203.0.113.0/24', FirewallAction.DENY, new Date(5_000)),
      ],
      'allow',
      500,
    );
    expect(rules.verdict('198.51.100.1').action).toBe('deny');
    expect(rules.validUntil).toBe(1_000);
    const after = new IpRules(rules.rules, 'allow', 1_000);
    expect(after.verdict('198.51.100.1').action).toBe('allow');
    expect(after.validUntil).toBe(5_000);
  });
});

describe('rootFieldCalls (rate limits count calls, not requests)', () => {
  const calls = (query: string) => {
    const document = parse(query);
    return Object.fromEntries(
      rootFieldCalls(
        document,
        document.definitions.find((definition) => definition.kind === Kind.OPERATION_DEFINITION)!,
      ),
    );
  };

  it('counts aliases, inline fragments and fragment spreads', () => {
    expect(
      calls(
        'mutation { a: signIn { x } b: signIn { x } ... on Mutation { signIn { x } } ...More } fragment More on Mutation { signUp { x } signIn { x } }',
      ),
    ).toEqual({ signIn: 4, signUp: 1 });
  });

  it('counts a fan-out of fragments in linear time (and as many calls as it spells)', () => {
    const fragments = Array.from(
      { length: 60 },
      (_unused, index) => `fragment F${index} on Mutation { ...F${index + 1} ...F${index + 1} }`,
    ).join(' ');
    const started = process.hrtime.bigint();
    const counted = calls(`mutation { ...F0 } ${fragments} fragment F60 on Mutation { signIn { x } }`);
    expect(counted.signIn).toBe(2 ** 60);
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(1000);
  });
});

describe('HitLog', () => {
  it('reports a kind whose hits all fell beyond the subject cap (an attacker rotating sources cannot hide them)', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:00Z');
    const windows: HitWindow[] = [];
    const hits = new HitLog(createLogger({ level: 'silent', pretty: false }), clock, 60_000, 2, async (window) => {
      windows.push(window);
    });
    hits.record('rate_limited', 'x');
    hits.record('rate_limited', 'y');
    for (let index = 0; index < 50; index += 1) hits.record('ip_blocked', `198.51.100.${index}`);
    await hits.flush();
    expect(windows.map((window) => [window.kind, window.hits])).toEqual([
      ['ip_blocked', 50],
      ['rate_limited', 2],
    ]);
  });

  it('logs the first hit of each subject per window, caps the subjects it keeps, and sums the rest up when the window turns', () => {
    const logs = new LogCollector();
    const clock = new FrozenClock('2026-01-01T00:00:00Z');
    const windows: HitWindow[] = [];
    const hits = new HitLog(createLogger({ level: 'debug', pretty: false, destination: logs }), clock, 60_000, 3, async (window) => {
      windows.push(window);
    });
    for (const subject of ['a', 'a', 'b', 'c', 'd', 'e', 'a']) hits.record('ip_blocked', subject);
    expect(logs.lines.filter((line) => line.msg === 'firewall: request blocked').map((line) => line.subject)).toEqual(['a', 'b', 'c']);
    clock.advance(60_000);
    hits.record('rate_limited', 'f');
    expect(logs.find((line) => line.msg === 'firewall: repeated hits in the last window')).toMatchObject({
      subjects: 1,
      hits: 3,
      unlistedHits: 2,
    });
    expect(hits.counts()).toEqual({ ip_blocked: 7, rate_limited: 1 });
    expect(windows).toEqual([
      {
        kind: 'ip_blocked',
        from: new Date('2026-01-01T00:00:00Z'),
        to: new Date('2026-01-01T00:01:00Z'),
        hits: 7,
        subjects: 3,
        top: [
          { subject: 'a', hits: 3 },
          { subject: 'b', hits: 1 },
          { subject: 'c', hits: 1 },
        ],
      },
    ]);
  });
});
