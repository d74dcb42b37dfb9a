import fs from 'node:fs';
import path from 'node:path';

/** The folder holding Bastion's package.json, found from the sources (tests) or from dist/ (built). */
function findProjectRoot(): { root: string; version: string } {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      const manifest = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'bastion' && manifest.version) return { root: dir, version: manifest.version };
    }
    if (path.dirname(dir) === dir) throw new Error('Bastion package.json not found above ' + __dirname);
  }
}

const project = findProjectRoot();
export const PROJECT_ROOT = project.root;
export const BASTION_VERSION = project.version;
