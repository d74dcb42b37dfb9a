#!/usr/bin/env node
'use strict';
// `npm run sbom`: writes sbom/bastion.cdx.json, a CycloneDX SBOM of exactly the packages a production
// install (`npm ci --omit dev`) holds, read from package-lock.json (so every platform's optional binary
// is listed, whichever machine runs it). `.ci/run` runs it after the tests; tests/unit/sbom.test.ts
// fails while the committed file disagrees with the lock.
//
// Why not `npm sbom --omit dev` alone: npm 10 and 11 leave out production packages that a dev tool
// also uses (npm/cli#7909; here it dropped `commander`, a direct dependency, and 73 more). So npm
// writes the SBOM of the whole lock, and this keeps the components the lock does not mark `dev`.
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const target = path.join(root, 'sbom', 'bastion.cdx.json');

/** `name@version` of every package in the lock that a production install keeps (the install folder's name, as npm's bom-ref). */
function productionPackages(lock) {
  const kept = new Set();
  for (const [location, entry] of Object.entries(lock.packages)) {
    if (location === '' || entry.dev || entry.link) continue;
    kept.add(`${location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${entry.version}`);
  }
  return kept;
}

/** Runs this npm (the one `npm run` started, else the one on PATH). */
function npm(args) {
  const execPath = process.env.npm_execpath;
  const [command, prefix] = execPath && execPath.endsWith('.js') ? [process.execPath, [execPath]] : ['npm', []];
  return execFileSync(command, [...prefix, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const production = productionPackages(JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')));
const bom = JSON.parse(npm(['sbom', '--sbom-format', 'cyclonedx', '--package-lock-only']));

const rootRef = bom.metadata.component['bom-ref'];
bom.components = bom.components.filter((component) => production.has(component['bom-ref']));
const listed = new Set([rootRef, ...bom.components.map((component) => component['bom-ref'])]);
// The root's edges are package.json's production ones: a dev dependency that is also installed for
// production (@types/node, through a dependency) is still no direct dependency of the server.
const direct = new Set(Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies }));
const isEdge = (from, ref) => listed.has(ref) && (from !== rootRef || direct.has(ref.slice(0, ref.lastIndexOf('@'))));
bom.dependencies = bom.dependencies
  .filter((dependency) => listed.has(dependency.ref))
  .map((dependency) => ({ ...dependency, dependsOn: dependency.dependsOn.filter((ref) => isEdge(dependency.ref, ref)) }));
// npm names the root after the checkout's folder; the package is what a scanner should see.
bom.metadata.component.name = manifest.name;
// Reproducible: the same production packages give the same file (no clock; the serial number is derived
// from what is listed, so a change to dev dependencies alone leaves the file as it was).
delete bom.metadata.timestamp;
const digest = crypto
  .createHash('sha256')
  .update(JSON.stringify([bom.metadata.component, bom.components, bom.dependencies]))
  .digest('hex');
// Shaped as a name-based (version 5, RFC 4122 variant) UUID, as CycloneDX asks of a serial number.
const uuid = [digest.slice(0, 8), digest.slice(8, 12), `5${digest.slice(13, 16)}`, `a${digest.slice(17, 20)}`, digest.slice(20, 32)];
bom.serialNumber = `urn:uuid:${uuid.join('-')}`;

fs.mkdirSync(path.dirname(target), { recursive: true });
fs.writeFileSync(target, `${JSON.stringify(bom, null, 2)}\n`);
process.stdout.write(`wrote ${path.relative(process.cwd(), target) || target}: ${bom.components.length} production packages\n`);
