#!/usr/bin/env node
'use strict';
// Builds the console (/console) and the account pages (/verify-email, /reset-password) from
// src/console/app into dist/console with esbuild: one HTML page each, and assets whose names hold
// their content's hash (served with a year's cache; the HTML is never cached). Everything the pages
// need is in the bundle (Preact, GraphiQL with React for the explorer, their CSS): no CDN, no font
// service. Run by `npm run build` (bin/build-if-changed.js).
const { Buffer } = require('node:buffer');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const esbuild = require('esbuild');

const root = path.join(__dirname, '..');
const app = path.join(root, 'src', 'console', 'app');
const out = path.join(root, 'dist', 'console');

/**
 * GraphiQL's stylesheet carries its fonts inline as data: URLs, which the pages' policy
 * (font-src 'self') refuses: each one is written out to a scratch folder and the stylesheet points
 * at that file, which esbuild then copies into the assets under a hashed name, as any other.
 */
function fontsAsFiles(scratch) {
  return {
    name: 'fonts-as-files',
    setup(build) {
      build.onLoad({ filter: /graphiql\.css$/ }, async (args) => {
        const css = await fs.promises.readFile(args.path, 'utf8');
        fs.mkdirSync(scratch, { recursive: true });
        const contents = css.replace(/url\((['"]?)data:font\/(woff2?|ttf);base64,([A-Za-z0-9+/=]+)\1\)/g, (_match, _quote, type, data) => {
          const bytes = Buffer.from(data, 'base64');
          const file = path.join(scratch, `font-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.${type}`);
          fs.writeFileSync(file, bytes);
          return `url(${JSON.stringify(file)})`;
        });
        return { contents, loader: 'css', resolveDir: path.dirname(args.path) };
      });
    },
  };
}

const common = {
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  loader: { '.woff2': 'file', '.woff': 'file', '.ttf': 'file', '.svg': 'file', '.png': 'file' },
  define: { 'process.env.NODE_ENV': '"production"' },
  legalComments: 'external',
  metafile: true,
  logLevel: 'warning',
  tsconfig: path.join(app, 'tsconfig.json'),
};

/** The output of one entry point: its script and its stylesheet, as URL paths. */
function entryOutputs(metafile, entry, base) {
  const outputs = Object.entries(metafile.outputs);
  const [script, output] = outputs.find(([, value]) => value.entryPoint === path.relative(root, entry).split(path.sep).join('/')) ?? [];
  if (!script) throw new Error(`esbuild produced nothing for ${entry}`);
  const url = (file) => `${base}/${path.basename(file)}`;
  return { script: url(script), style: output.cssBundle ? url(output.cssBundle) : null };
}

/** Copies the icon into a page's assets under a hashed name; returns its URL path. */
function icon(folder, base) {
  const bytes = fs.readFileSync(path.join(app, 'icon.svg'));
  const name = `icon-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}.svg`;
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, name), bytes);
  return `${base}/${name}`;
}

/** A page with no inline script or style: everything it runs comes from a file under the policy's 'self'. */
function html({ title, script, style, mount, iconUrl }) {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    `<title>${title}</title>`,
    `<link rel="icon" type="image/svg+xml" href="${iconUrl}">`,
    style ? `<link rel="stylesheet" href="${style}">` : '',
    `<script type="module" src="${script}"></script>`,
    '</head>',
    '<body>',
    `<div id="${mount}"></div>`,
    '<noscript>This page needs JavaScript.</noscript>',
    '</body>',
    '</html>',
    '',
  ]
    .filter((line) => line !== '')
    .join('\n');
}

/** A page is swapped in whole: a server starting meanwhile reads the old one or the new one. */
function writeAtomically(file, text) {
  fs.writeFileSync(`${file}.${process.pid}`, text);
  fs.renameSync(`${file}.${process.pid}`, file);
}

async function main() {
  // Earlier builds' assets stay (a page loaded before this build still finds its files); the pages are replaced last.
  fs.mkdirSync(out, { recursive: true });
  const consoleEntry = path.join(app, 'console.tsx');
  const accountEntry = path.join(app, 'account.tsx');
  // The console: code splitting, so the explorer (GraphiQL and React) loads only when opened.
  const consoleAssets = path.join(out, 'assets');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-console-fonts-'));
  let consoleBuild;
  try {
    consoleBuild = await esbuild.build({
      ...common,
      entryPoints: [consoleEntry],
      splitting: true,
      outdir: consoleAssets,
      plugins: [fontsAsFiles(scratch)],
      // GraphiQL's dialogs lock scrolling with a <style> element the policy refuses: the same API, on an adopted stylesheet.
      alias: { 'react-style-singleton': path.join(app, 'adopted-style-singleton.ts') },
    });
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  const consolePage = entryOutputs(consoleBuild.metafile, consoleEntry, '/console/assets');
  writeAtomically(
    path.join(out, 'index.html'),
    html({ title: 'Bastion console', mount: 'console', iconUrl: icon(consoleAssets, '/console/assets'), ...consolePage }),
  );
  // The account pages: small, on their own, with no access to the console's code.
  const accountBuild = await esbuild.build({ ...common, entryPoints: [accountEntry], outdir: path.join(out, 'account') });
  const accountPage = entryOutputs(accountBuild.metafile, accountEntry, '/account');
  writeAtomically(
    path.join(out, 'account.html'),
    html({ title: 'Bastion', mount: 'account', iconUrl: icon(path.join(out, 'account'), '/account'), ...accountPage }),
  );
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
