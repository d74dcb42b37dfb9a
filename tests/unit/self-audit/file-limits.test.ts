import { Config } from '../../../src/config';
import { configWith, loadConfig } from '../../../src/settings';
import { FILE_CHECKS, FileCheckContext } from '../../../src/self-audit/files-checks';

describe('self-audit firewall.file_limits', () => {
  // The check reads the configuration only (the files feature's settings through Config).
  const run = (config: Partial<Config>) =>
    FILE_CHECKS.find((check) => check.id === 'firewall.file_limits')!.run({ config: configWith(config) } as FileCheckContext);

  it('passes with the defaults, listing every limit in force', async () => {
    const finding = await run({});
    expect(finding).toMatchObject({ status: 'PASS', remedy: null });
    expect(finding.detail).toBe(
      'Limits: 1gb of files per account, 4 uploads in flight per account and 8 per address on each instance, ' +
        'images ≤ 50000000 pixels, download URLs valid 300 s.',
    );
  });

  it('passes at the thresholds: 100gb of quota, 16 and 64 uploads in flight, 100000000 pixels, an hour of URL', async () => {
    const settings = loadConfig({
      NODE_ENV: 'test',
      BASTION_FILES_ACCOUNT_QUOTA: '100gb',
      BASTION_FILES_MAX_UPLOADS_PER_ACCOUNT: '16',
      BASTION_FILES_MAX_UPLOADS_PER_ADDRESS: '64',
      BASTION_FILES_MAX_IMAGE_PIXELS: '100000000',
      BASTION_FILES_URL_TTL_SECONDS: '3600',
    });
    expect((await run(settings)).status).toBe('PASS');
  });

  it('warns on a quota over 100gb, naming the setting', async () => {
    const finding = await run(loadConfig({ NODE_ENV: 'test', BASTION_FILES_ACCOUNT_QUOTA: '101gb' }));
    expect(finding.status).toBe('WARN');
    expect(finding.detail).toContain('Loose file limits: BASTION_FILES_ACCOUNT_QUOTA 101gb (> 100gb).');
    expect(finding.remedy).toContain('BASTION_FILES_*');
  });

  it('warns on download URLs valid over an hour: a leaked link works that long', async () => {
    const finding = await run({ filesUrlTtlSeconds: 3601 });
    expect(finding.status).toBe('WARN');
    expect(finding.detail).toContain('BASTION_FILES_URL_TTL_SECONDS 3601 (> 3600: a leaked download link works that long)');
  });

  it('warns on loose in-flight upload limits and image sizes, listing each', async () => {
    const finding = await run({ filesMaxUploadsPerAccount: 17, filesMaxUploadsPerAddress: 65, filesMaxImagePixels: 100_000_001 });
    expect(finding.status).toBe('WARN');
    expect(finding.detail).toContain(
      'BASTION_FILES_MAX_UPLOADS_PER_ACCOUNT 17 (> 16), BASTION_FILES_MAX_UPLOADS_PER_ADDRESS 65 (> 64), ' +
        'BASTION_FILES_MAX_IMAGE_PIXELS 100000001 (> 100000000)',
    );
  });

  it('fails on a limit without a finite value (a Config built in code is not parsed)', async () => {
    const finding = await run({ filesAccountQuotaBytes: Infinity, filesMaxUploadsPerAddress: 0 });
    expect(finding.status).toBe('FAIL');
    expect(finding.detail).toBe(
      'File limits without a finite value: BASTION_FILES_ACCOUNT_QUOTA is Infinity, BASTION_FILES_MAX_UPLOADS_PER_ADDRESS is 0.',
    );
    expect(finding.remedy).toContain('positive whole numbers');
  });

  it('cannot be given an unlimited value from the environment: the settings refuse it before any check runs', () => {
    expect(() => loadConfig({ NODE_ENV: 'test', BASTION_FILES_ACCOUNT_QUOTA: '0' })).toThrow(/BASTION_FILES_ACCOUNT_QUOTA/);
    expect(() => loadConfig({ NODE_ENV: 'test', BASTION_FILES_MAX_UPLOADS_PER_ACCOUNT: '100000' })).toThrow(
      /BASTION_FILES_MAX_UPLOADS_PER_ACCOUNT/,
    );
  });
});
