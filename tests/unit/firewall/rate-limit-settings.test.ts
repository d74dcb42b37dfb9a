import { FIREWALL_SETTINGS, rateLimitsInForce } from '../../../src/firewall/firewall.settings';
import { configWith } from '../../../src/settings';

/** A points/seconds value, as every rate-limit setting parses to. */
const isRateLimit = (value: unknown): boolean => typeof value === 'object' && value !== null && 'points' in value && 'seconds' in value;

describe('rateLimitsInForce (the rateLimits query)', () => {
  it('lists every rate-limit setting once, under a unique snake_case name', () => {
    const rateLimitSettings = Object.values(FIREWALL_SETTINGS.specs)
      .filter((setting) => isRateLimit(setting.fallback('production')))
      .map((setting) => setting.env);
    const listed = rateLimitsInForce(configWith({}));
    expect(listed.map((limit) => limit.setting).sort()).toEqual(rateLimitSettings.sort());
    expect(new Set(listed.map((limit) => limit.name)).size).toBe(listed.length);
    for (const limit of listed) expect(limit.name).toMatch(/^[a-z]+(_[a-z]+)*$/);
  });

  it("reads each limit from the configuration, and says what it counts without the setting's syntax", () => {
    const config = configWith({}, { NODE_ENV: 'test', BASTION_RATE_LIMIT_VERIFY_MFA: '3/45' });
    const listed = rateLimitsInForce(config);
    expect(listed.find((limit) => limit.name === 'verify_mfa')).toEqual({
      name: 'verify_mfa',
      description: 'verifyMfa attempts per client address.',
      limit: 3,
      windowSeconds: 45,
      setting: 'BASTION_RATE_LIMIT_VERIFY_MFA',
    });
    expect(listed.find((limit) => limit.name === 'per_ip')).toMatchObject({ limit: 600, windowSeconds: 60 });
    for (const limit of listed) expect(limit.description).not.toMatch(/points|seconds/);
  });
});
