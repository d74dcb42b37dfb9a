import { addressBucket } from '../../../src/net/ip';

describe('addressBucket', () => {
  it('keeps IPv4 addresses whole', () => {
    expect(addressBucket('203.0.113.9')).toBe('203.0.113.9');
  });

  it('groups IPv6 addresses by /64, however they are written', () => {
    expect(addressBucket('2001:db8:1:2::5')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('2001:0db8:0001:0002:ffff:1:2:3')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressBucket('2001:db8:1:3::5')).not.toBe(addressBucket('2001:db8:1:2::5'));
  });

  it('has one bucket for unknown addresses', () => {
    expect(addressBucket(null)).toBe('unknown');
  });
});
