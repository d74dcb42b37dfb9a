#!/usr/bin/env node
'use strict';
// `npm run breached-passwords:build`: rewrites assets/breached-passwords.bff from the password
// lists pinned in package.json's devDependencies (src/accounts/breached-passwords.source.ts), then
// prints what went in. Deterministic: the same lists give the same bytes, which a unit test checks.
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist', 'src', 'accounts');
const { BREACHED_PASSWORDS_FILE } = require(path.join(dist, 'breached-passwords.js'));
const source = require(path.join(dist, 'breached-passwords.source.js'));

const startedAt = Date.now();
const filter = source.buildBreachedPasswordFilter();
const bytes = filter.serialize();
fs.mkdirSync(path.dirname(BREACHED_PASSWORDS_FILE), { recursive: true });
fs.writeFileSync(BREACHED_PASSWORDS_FILE, bytes);
const bitsPerKey = ((bytes.length * 8) / filter.size).toFixed(1);
process.stdout.write(
  `${path.relative(process.cwd(), BREACHED_PASSWORDS_FILE)}: ${filter.size} passwords ` +
    `from ${source.breachedPasswordListVersions().join(', ')}, ` +
    `${bytes.length} bytes (${bitsPerKey} bits each), built in ${Date.now() - startedAt} ms\n`,
);
