import { Config } from '../../../src/config';
import { configWith, loadConfig } from '../../../src/settings';
import { CHECKS, CheckContext } from '../../../src/self-audit/checks';

describe('self-audit firewall.websocket_policy', () => {
  // The check reads the configuration only (the realtime feature's settings through Config, not its code).
  // configWith starts from this process's (test) defaults: a production configuration requires wss:// unless told otherwise.
  const run = (config: Partial<Config>) =>
    CHECKS.find((check) => check.id === 'firewall.websocket_policy')!.run({
      config: configWith({ ...(config.nodeEnv === 'production' ? { wsRequireTls: true } : {}), ...config }),
    } as CheckContext);

  it('warns in production when plain ws:// upgrades are accepted', async () => {
    const finding = await run({ nodeEnv: 'production', corsOrigins: [], wsRequireTls: false });
    expect(finding.status).toBe('WARN');
    expect(finding.detail).toContain('BASTION_WS_REQUIRE_TLS=false');
  });

  it('passes with the allowed origins counted and every WebSocket limit in force', async () => {
    const finding = await run({
      nodeEnv: 'production',
      corsOrigins: ['https://admin.example.com', 'https://ops.example.com'],
      wsMaxSocketsPerAddress: 40,
      wsMaxSocketsPerAccount: 8,
    });
    expect(finding).toMatchObject({ status: 'PASS', remedy: null });
    expect(finding.detail).toContain('accepted from the 2 CORS_ORIGINS origin(s) only');
    expect(finding.detail).toContain('40 sockets per address and 8 per account on each instance');
    expect(finding.detail).toContain('20 subscriptions and 20 messages/s per socket');
    expect(finding.detail).toContain('messages ≤ 65536 bytes');
    expect(finding.detail).toContain('connection_init within 5000 ms');
  });

  it('passes with no origin at all: browser pages are refused, native apps send none', async () => {
    const finding = await run({ nodeEnv: 'production', corsOrigins: [] });
    expect(finding).toMatchObject({ status: 'PASS', detail: expect.stringContaining('are refused (CORS_ORIGINS is empty)') });
  });

  it('allows the development default (Apollo Sandbox origins) outside production', async () => {
    const development = loadConfig({}, '/srv/app');
    expect(development.corsOrigins.some((origin) => origin.includes('apollographql.com'))).toBe(true);
    expect((await run({ nodeEnv: 'development', corsOrigins: development.corsOrigins })).status).toBe('PASS');
  });

  it('warns in production on an Apollo Studio or Sandbox origin, saying CORS_ORIGINS holds no wildcard', async () => {
    const finding = await run({
      nodeEnv: 'production',
      corsOrigins: ['https://admin.example.com', 'https://studio.apollographql.com', 'https://sandbox.embed.apollographql.com'],
    });
    expect(finding.status).toBe('WARN');
    expect(finding.detail).toContain('Apollo Studio/Sandbox: https://studio.apollographql.com, https://sandbox.embed.apollographql.com');
    expect(finding.detail).toContain('CORS_ORIGINS cannot hold a wildcard');
    expect(finding.detail).not.toContain('https://admin.example.com (');
    expect(finding.remedy).toContain('https origins of your own admin tools');
  });

  it('warns in production on an origin that is not https', async () => {
    const finding = await run({ nodeEnv: 'production', corsOrigins: ['http://admin.example.com'] });
    expect(finding).toMatchObject({ status: 'WARN', detail: expect.stringContaining('not https: http://admin.example.com') });
  });

  it('cannot meet a wildcard: the setting refuses one before any check runs', () => {
    expect(() => loadConfig({ CORS_ORIGINS: '*' }, '/srv/app')).toThrow(/CORS_ORIGINS/);
  });
});
