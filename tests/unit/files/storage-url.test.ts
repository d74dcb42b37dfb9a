import { describeStorage, parseStorageUrl, StorageTarget, StorageUrlError } from '../../../src/files/storage-url';

/** The error parseStorageUrl throws for `value` (fails the test when it throws none). */
function errorFor(value: string): Error {
  try {
    parseStorageUrl(value);
  } catch (error) {
    expect(error).toBeInstanceOf(StorageUrlError);
    return error as Error;
  }
  throw new Error(`parseStorageUrl accepted ${value}`);
}

describe('parseStorageUrl', () => {
  describe('the database store', () => {
    it.each([undefined, '', '   ', 'postgres', ' postgres ', 'POSTGRES'])('reads %p as postgres', (value) => {
      expect(parseStorageUrl(value)).toEqual({ kind: 'postgres' });
    });

    it('refuses another scheme, naming the scheme but not the rest of the value', () => {
      const error = errorFor('postgresql://bastion:hunter2@db/app');
      expect(error.message).toContain('"postgresql:"');
      expect(error.message).toContain('s3://');
      expect(error.message).not.toContain('hunter2');
    });

    it('refuses a value that is neither postgres nor a URL', () => {
      expect(errorFor('minio').message).toMatch(/expected "postgres" or an s3:\/\/ URL/);
    });
  });

  describe('an S3 bucket', () => {
    it('reads every parameter', () => {
      expect(
        parseStorageUrl('s3://bastion-files?endpoint=http://127.0.0.1:9000&region=eu-west-1&prefix=bastion/&forcePathStyle=true'),
      ).toEqual({
        kind: 's3',
        bucket: 'bastion-files',
        region: 'eu-west-1',
        endpoint: 'http://127.0.0.1:9000',
        prefix: 'bastion/',
        forcePathStyle: true,
      });
    });

    it('defaults to us-east-1, no prefix and virtual-hosted style on AWS (no endpoint)', () => {
      const target = parseStorageUrl('s3://bastion-files');
      expect(target).toEqual({ kind: 's3', bucket: 'bastion-files', region: 'us-east-1', prefix: '', forcePathStyle: false });
      expect(target).not.toHaveProperty('endpoint');
    });

    it('accepts a trailing slash after the bucket', () => {
      expect(parseStorageUrl('s3://bastion-files/')).toMatchObject({ bucket: 'bastion-files' });
    });

    describe('bucket names', () => {
      it.each(['abc', 'a'.repeat(63), 'my.bucket-2', '0bucket9'])('accepts %p', (bucket) => {
        expect(parseStorageUrl(`s3://${bucket}`)).toMatchObject({ kind: 's3', bucket });
      });

      it.each([
        ['ab', /3 to 63 characters/],
        ['a'.repeat(64), /3 to 63 characters/],
        ['My-Bucket', /lowercase letters, digits, dots and hyphens/],
        ['my_bucket', /lowercase letters, digits, dots and hyphens/],
        ['-bucket', /begin and end with a letter or a digit/],
        ['bucket.', /begin and end with a letter or a digit/],
        ['my..bucket', /two dots in a row/],
        ['192.168.1.10', /IP address/],
      ])('refuses %p', (bucket, reason) => {
        const error = errorFor(`s3://${bucket}`);
        expect(error.message).toMatch(reason);
        expect(error.message).toContain(bucket);
      });

      it('refuses a URL without a bucket', () => {
        expect(errorFor('s3://?region=eu-west-1').message).toMatch(/no bucket name/);
      });
    });

    describe('credentials', () => {
      it.each([
        's3://AKIAEXAMPLE:wJalrXUtnFEMI@bastion-files',
        's3://AKIAEXAMPLE@bastion-files',
        's3://bastion-files?endpoint=http://minio:wJalrXUtnFEMI@127.0.0.1:9000',
        's3://bastion-files?accessKeyId=AKIAEXAMPLE',
        's3://bastion-files?secretAccessKey=wJalrXUtnFEMI',
        's3://bastion-files?sessionToken=wJalrXUtnFEMI',
      ])('refuses them in %s and points to the AWS credential chain without repeating them', (value) => {
        const error = errorFor(value);
        expect(error.message).toContain('AWS_ACCESS_KEY_ID');
        expect(error.message).toContain('AWS_SECRET_ACCESS_KEY');
        expect(error.message).toMatch(/profile/);
        expect(error.message).toMatch(/instance role/);
        expect(error.message).not.toContain('wJalrXUtnFEMI');
        expect(error.message).not.toContain('AKIAEXAMPLE');
      });
    });

    describe('endpoint', () => {
      it.each([
        ['https://s3.example.com', 'https://s3.example.com'],
        ['https://s3.example.com/', 'https://s3.example.com'],
        ['http://127.0.0.1:9000', 'http://127.0.0.1:9000'],
        ['https://gateway.example.com/s3/', 'https://gateway.example.com/s3'],
      ])('accepts %p as %p', (endpoint, normalized) => {
        expect(parseStorageUrl(`s3://bastion-files?endpoint=${encodeURIComponent(endpoint)}`)).toMatchObject({ endpoint: normalized });
      });

      it.each([
        ['ftp://files.example.com', /http:\/\/ or https:\/\//],
        ['minio:9000', /http:\/\/ or https:\/\//],
        ['127.0.0.1:9000', /not a URL: expected http\(s\):\/\/host\[:port\]/],
        ['not a url', /not a URL/],
        [encodeURIComponent('https://s3.example.com/?x=1'), /query/],
      ])('refuses %p', (endpoint, reason) => {
        expect(errorFor(`s3://bastion-files?endpoint=${endpoint}`).message).toMatch(reason);
      });

      it('defaults to path style with an endpoint, and forcePathStyle=false turns it off', () => {
        expect(parseStorageUrl('s3://bastion-files?endpoint=http://127.0.0.1:9000')).toMatchObject({ forcePathStyle: true });
        expect(parseStorageUrl('s3://bastion-files?endpoint=http://127.0.0.1:9000&forcePathStyle=false')).toMatchObject({
          forcePathStyle: false,
        });
        expect(parseStorageUrl('s3://bastion-files?forcePathStyle=true')).toMatchObject({ forcePathStyle: true });
      });

      it('refuses a forcePathStyle other than true or false', () => {
        expect(errorFor('s3://bastion-files?forcePathStyle=yes').message).toMatch(/forcePathStyle must be true or false/);
      });

      it('refuses a port or a path on the s3:// URL itself, pointing to the right parameter', () => {
        expect(errorFor('s3://bastion-files:9000').message).toMatch(/\?endpoint=/);
        expect(errorFor('s3://bastion-files/bastion/').message).toMatch(/\?prefix=/);
      });
    });

    describe('region', () => {
      it('takes the given one', () => {
        expect(parseStorageUrl('s3://bastion-files?region=ap-southeast-2')).toMatchObject({ region: 'ap-southeast-2' });
      });

      it.each(['', 'eu west 1', 'eu_west_1'])('refuses %p', (region) => {
        expect(errorFor(`s3://bastion-files?region=${encodeURIComponent(region)}`).message).toMatch(/region must be/);
      });
    });

    describe('prefix', () => {
      it.each([
        ['bastion', 'bastion/'],
        ['bastion/', 'bastion/'],
        ['/bastion/files', 'bastion/files/'],
        ['', ''],
        ['/', ''],
      ])('normalizes %p to %p', (prefix, normalized) => {
        expect(parseStorageUrl(`s3://bastion-files?prefix=${encodeURIComponent(prefix)}`)).toMatchObject({ prefix: normalized });
      });

      it('refuses control characters and an over-long prefix', () => {
        expect(errorFor(`s3://bastion-files?prefix=${encodeURIComponent('a\nb')}`).message).toMatch(/control characters/);
        expect(errorFor(`s3://bastion-files?prefix=${'p'.repeat(901)}`).message).toMatch(/longer than 900 bytes/);
      });
    });

    it('refuses an unknown parameter, naming it and the known ones', () => {
      const error = errorFor('s3://bastion-files?regoin=eu-west-1');
      expect(error.message).toContain('"regoin"');
      expect(error.message).toContain('endpoint, region, prefix, forcePathStyle');
    });

    it('refuses a parameter given twice', () => {
      expect(errorFor('s3://bastion-files?region=eu-west-1&region=us-east-1').message).toMatch(/"region" is given twice/);
    });

    it('refuses a #fragment', () => {
      expect(errorFor('s3://bastion-files#x').message).toMatch(/fragment/);
    });
  });
});

describe('describeStorage', () => {
  it('names the database store', () => {
    expect(describeStorage({ kind: 'postgres' })).toMatch(/^postgres\b/);
  });

  it('names the bucket, region, endpoint, prefix and addressing style', () => {
    const target: StorageTarget = parseStorageUrl('s3://bastion-files?endpoint=http://127.0.0.1:9000&region=eu-west-1&prefix=bastion');
    expect(describeStorage(target)).toBe(
      's3://bastion-files (region eu-west-1, endpoint http://127.0.0.1:9000, key prefix "bastion/", path-style)',
    );
    expect(describeStorage(parseStorageUrl('s3://bastion-files'))).toBe(
      's3://bastion-files (region us-east-1, AWS endpoint, no key prefix, virtual-hosted-style)',
    );
  });

  it('never shows credentials, even from a target built by hand', () => {
    const target = {
      kind: 's3',
      bucket: 'b-1',
      region: 'us-east-1',
      prefix: '',
      forcePathStyle: true,
      secretAccessKey: 'wJalrXUtnFEMI',
    } as StorageTarget;
    expect(describeStorage(target)).not.toContain('wJalrXUtnFEMI');
  });
});
