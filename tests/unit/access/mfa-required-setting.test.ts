import { ConfigError } from '../../../src/config';
import { Config } from '../../../src/config';
import { configWith, loadConfig } from '../../../src/settings';
import { CHECKS, CheckContext } from '../../../src/self-audit/checks';

const KEY = (fill: number) => Buffer.alloc(32, fill).toString('base64');
/** The least a production start needs, so only the settings under test vary. */
const PRODUCTION = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://u:p@db:5432/app?sslmode=verify-full',
  BASTION_ENCRYPTION_KEYS: `k1:${KEY(1)}`,
  BASTION_BLIND_INDEX_KEY: KEY(2),
  SMTP_URL: 'smtps://bastion:pw@mail.example.com:465',
};

/** The problems a configuration is refused for (none: it loads). */
function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env, '/srv/app');
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

describe('BASTION_MFA_REQUIRED_FOR', () => {
  it('is all in production unless relaxed (ASVS 6.3.3), and stays none in development and tests', () => {
    expect(loadConfig(PRODUCTION, '/srv/app').mfaRequiredFor).toBe('all');
    expect(loadConfig({ ...PRODUCTION, BASTION_MFA_REQUIRED_FOR: 'admin' }, '/srv/app').mfaRequiredFor).toBe('admin');
    expect(loadConfig({}, '/srv/app').mfaRequiredFor).toBe('none');
    expect(loadConfig({ NODE_ENV: 'test' }, '/srv/app').mfaRequiredFor).toBe('none');
  });

  it('takes the reason for relaxing it as one line of text', () => {
    const reason = 'kiosk accounts share a device; tracked in SEC-142';
    expect(loadConfig({ ...PRODUCTION, BASTION_MFA_RELAXED_REASON: reason }, '/srv/app').mfaRelaxedReason).toBe(reason);
    expect(loadConfig(PRODUCTION, '/srv/app').mfaRelaxedReason).toBeUndefined();
    expect(problemsOf({ ...PRODUCTION, BASTION_MFA_RELAXED_REASON: 'line one\nline two' })).toEqual([
      'BASTION_MFA_RELAXED_REASON: must be one line without control characters',
    ]);
    expect(problemsOf({ ...PRODUCTION, BASTION_MFA_RELAXED_REASON: 'x'.repeat(201) })).toEqual([
      'BASTION_MFA_RELAXED_REASON: must be at most 200 characters (got 201)',
    ]);
  });
});

describe('self-audit access_control.mfa_required', () => {
  // The check reads the configuration only.
  const run = (config: Partial<Config>) =>
    CHECKS.find((check) => check.id === 'access_control.mfa_required')!.run({
      config: configWith({ nodeEnv: 'production', ...config }),
    } as CheckContext);

  it('passes with all, and warns when relaxed, quoting the recorded reason or saying there is none', async () => {
    expect((await run({ mfaRequiredFor: 'all' })).status).toBe('PASS');
    const explained = await run({ mfaRequiredFor: 'admin', mfaRelaxedReason: 'kiosk accounts, SEC-142' });
    expect(explained).toMatchObject({ status: 'WARN', detail: expect.stringContaining('Relaxed because: kiosk accounts, SEC-142') });
    const unexplained = await run({ mfaRequiredFor: 'none' });
    expect(unexplained).toMatchObject({
      status: 'WARN',
      detail: expect.stringContaining('No reason is recorded (BASTION_MFA_RELAXED_REASON)'),
      remedy: expect.stringContaining('BASTION_MFA_REQUIRED_FOR=all'),
    });
  });
});
