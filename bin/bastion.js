#!/usr/bin/env node
'use strict';
// The `bastion` command. The TypeScript sources are compiled by `npm install` (prepare) and `npm start`.
let cli;
try {
  cli = require('../dist/src/cli.js');
} catch (error) {
  if (error && error.code === 'MODULE_NOT_FOUND' && String(error.message).includes('dist/src/cli.js')) {
    process.stderr.write('bastion: not built yet; run `npm run build` in the Bastion folder first\n');
    process.exit(1);
  }
  throw error;
}
cli.runCli(process.argv);
