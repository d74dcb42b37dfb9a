import fs from 'node:fs';
import path from 'node:path';

const root = path.join(__dirname, '..', '..');
const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(path.join(root, file), 'utf8')) as T;

interface LockEntry {
  readonly version?: string;
  readonly integrity?: string;
  readonly dev?: boolean;
  readonly link?: boolean;
}

interface Component {
  readonly 'bom-ref': string;
  readonly name: string;
  readonly group?: string;
  readonly version: string;
  readonly purl: string;
  readonly hashes?: readonly { readonly alg: string; readonly content: string }[];
}

interface Bom {
  readonly bomFormat: string;
  readonly specVersion: string;
  readonly metadata: { readonly component: { readonly 'bom-ref': string; readonly name: string; readonly version: string } };
  readonly components: readonly Component[];
  readonly dependencies: readonly { readonly ref: string; readonly dependsOn: readonly string[] }[];
}

const manifest = readJson<{ name: string; version: string; dependencies: Record<string, string> }>('package.json');
const lock = readJson<{ packages: Record<string, LockEntry> }>('package-lock.json');
const bom = readJson<Bom>('sbom/bastion.cdx.json');

/** What `npm ci --omit dev` installs, by install name: every lock entry not marked dev. */
const production = new Map(
  Object.entries(lock.packages)
    .filter(([location, entry]) => location !== '' && !entry.dev && !entry.link)
    .map(([location, entry]): [string, LockEntry] => [`${location.split('node_modules/').at(-1)}@${entry.version}`, entry]),
);

describe('the committed SBOM (sbom/bastion.cdx.json; `npm run sbom` rewrites it)', () => {
  it('is CycloneDX for this package', () => {
    expect({ format: bom.bomFormat, root: bom.metadata.component }).toMatchObject({
      format: 'CycloneDX',
      root: { 'bom-ref': `${manifest.name}@${manifest.version}`, name: manifest.name, version: manifest.version },
    });
    expect(Number(bom.specVersion)).toBeGreaterThanOrEqual(1.5);
  });

  it('lists exactly the production packages of package-lock.json, at their locked versions', () => {
    const listed = bom.components.map(
      (component) => `${component.group ? `${component.group}/` : ''}${component.name}@${component.version}`,
    );
    expect(new Set(listed).size).toBe(listed.length);
    // A package added, removed or upgraded without `npm run sbom` shows up here by name.
    expect([...listed].sort()).toEqual([...production.keys()].sort());
    expect(listed.filter((reference) => /^(jest|typescript|eslint)@/.test(reference))).toEqual([]);
  });

  it('carries the lock file’s integrity hash of each package, so a scanner can match the exact tarball', () => {
    const mismatched = bom.components.filter((component) => {
      const integrity = production.get(component['bom-ref'])?.integrity;
      if (!integrity?.startsWith('sha512-')) return false; // a package without a registry hash (none today)
      const expected = Buffer.from(integrity.slice('sha512-'.length), 'base64').toString('hex');
      return !component.hashes?.some((hash) => hash.alg === 'SHA-512' && hash.content === expected);
    });
    expect(mismatched.map((component) => component['bom-ref'])).toEqual([]);
    expect(bom.components.every((component) => component.purl.startsWith('pkg:npm/'))).toBe(true);
  });

  it("records the direct dependencies as package.json's, and no edge to a package it does not list", () => {
    const direct = bom.dependencies.find((dependency) => dependency.ref === bom.metadata.component['bom-ref']);
    expect([...(direct?.dependsOn ?? [])].sort()).toEqual(
      Object.entries(manifest.dependencies)
        .map(([name, version]) => `${name}@${version}`)
        .sort(),
    );
    const known = new Set([bom.metadata.component['bom-ref'], ...bom.components.map((component) => component['bom-ref'])]);
    const dangling = bom.dependencies.flatMap((dependency) => [dependency.ref, ...dependency.dependsOn]).filter((ref) => !known.has(ref));
    expect(dangling).toEqual([]);
  });
});
