import { PrefixTable, addressValue, containsAddress, formatCidr, parseCidr } from '../../../src/firewall/cidr';
import { FirewallAction, FirewallRule } from '../../../src/firewall/firewall-rule.entity';
import { IpRules } from '../../../src/firewall/ip-rules';

const rule = (id: string, cidr: string, action: FirewallAction, expiresAt: Date | null = null) => Object.assign(new FirewallRule(), { id, cidr, action, expiresAt, note: null, createdBy: null, createdAt: new Date(0) });

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

  it.each(['', 'localhost', '300.1.1.1', '10.0.0.0/33', '2001:db8::/129', '10.0.0.0/8/8', '10.0.0.0/-1', '10.0.0.0/ 8', '1.2.3'])('refuses %p', (input) => {
    expect(parseCidr(input)).toBeNull();
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
    const rules = new IpRules([rule('a', '198.51.100.0/24', FirewallAction.DENY), rule('b', '198.51.100.64/26', FirewallAction.ALLOW), rule('c', '192.0.2.0/24', FirewallAction.ALLOW), rule('d', '192.0.2.0/24', FirewallAction.DENY)], 'allow', 0);
    expect(rules.verdict('198.51.100.1')).toMatchObject({ action: 'deny', rule: { id: 'a' } });
    expect(rules.verdict('198.51.100.70')).toMatchObject({ action: 'allow', rule: { id: 'b' } });
    expect(rules.verdict('192.0.2.9')).toMatchObject({ action: 'deny', rule: { id: 'd' } });
    expect(rules.verdict('203.0.113.1')).toEqual({ action: 'allow', rule: null });
    expect(new IpRules([rule('b', '198.51.100.64/26', FirewallAction.ALLOW)], 'deny', 0).verdict('203.0.113.1')).toEqual({ action: 'deny', rule: null });
  });

  it('leaves expired rules out and knows when the next one expires', () => {
    const rules = new IpRules([rule('soon', '198.51.100.0/24', FirewallAction.DENY, new Date(1_000)), rule('later', '203.0.113.0/24', FirewallAction.DENY, new Date(5_000))], 'allow', 500);
    expect(rules.verdict('198.51.100.1').action).toBe('deny');
    expect(rules.validUntil).toBe(1_000);
    const after = new IpRules(rules.rules, 'allow', 1_000);
    expect(after.verdict('198.51.100.1').action).toBe('allow');
    expect(after.validUntil).toBe(5_000);
  });
});
