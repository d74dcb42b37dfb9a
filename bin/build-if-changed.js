#!/usr/bin/env node
'use strict';
// `npm start`'s build: runs `tsc -p tsconfig.build.json` only when an input is newer than the last
// successful build (dist/.build-stamp), so a restart with nothing changed skips tsc (~3 s).
// Inputs: every file under src/ (the console's sources too), migrations/, tests/bench/, and
// ormconfig.ts, package.json, package-lock.json, tsconfig.json, tsconfig.build.json,
// bin/build-console.js. A missing dist/src/cli.js also builds. After tsc, bin/build-console.js
// bundles the console into dist/console.
// `--always` (npm run build) builds whatever the stamp says, and stamps it.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const stamp = path.join(root, 'dist', '.build-stamp');
const folders = ['src', 'migrations', path.join('tests', 'bench')];
const files = ['ormconfig.ts', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'bin/build-console.js'];

function newestIn(folder) {
  let entries;
  try {
    entries = fs.readdirSync(folder, { withFileTypes: true });
  } catch {
    return 0;
  }
  let newest = fs.statSync(folder).mtimeMs; // a file added or removed
  for (const entry of entries) {
    const full = path.join(folder, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(full) : fs.statSync(full).mtimeMs);
  }
  return newest;
}

function mtimeOf(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

const built = fs.existsSync(path.join(root, 'dist', 'src', 'cli.js')) ? mtimeOf(stamp) : 0;
const newest = Math.max(
  ...folders.map((folder) => newestIn(path.join(root, folder))),
  ...files.map((file) => mtimeOf(path.join(root, file))),
);
if (!process.argv.includes('--always') && built > 0 && newest < built) process.exit(0);

const startedAt = Date.now();
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
  cwd: root,
  stdio: 'inherit',
});
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
// The console and the account pages (src/console/app), bundled for the browser.
const pages = spawnSync(process.execPath, [path.join(__dirname, 'build-console.js')], { cwd: root, stdio: 'inherit' });
if (pages.status !== 0) process.exit(pages.status ?? 1);
// The stamp marks the moment the build started: a file saved during the build builds again next time.
fs.writeFileSync(stamp, '');
fs.utimesSync(stamp, new Date(startedAt), new Date(startedAt));
