/**
 * Which folder of src/ may import which (`npm run lint` checks it; docs/architecture.md explains it).
 *
 * The platform (config, logging, errors, db, http, graphql, shield, net and the machinery files in
 * src/ itself) imports no feature. Features form a layered graph: each may import the platform and
 * the features listed for it below, nothing else. The composition root (features.ts, settings.ts,
 * main.ts, cli.ts) may import anything. Type-only imports count: a cycle of types is a cycle.
 */

/** Feature folder → the feature folders it may import. Adding a feature: one line here. */
const MAY_IMPORT = {
  system: [],
  audit: [],
  crypto: ['audit'],
  mail: ['crypto'],
  accounts: ['audit', 'crypto', 'mail'],
  mfa: ['accounts', 'audit', 'crypto', 'mail'],
  access: ['accounts', 'audit'],
  firewall: ['access', 'accounts', 'audit'],
  data: ['access', 'accounts', 'crypto'],
  models: ['crypto', 'data'],
  realtime: ['access', 'accounts', 'crypto', 'data', 'firewall'],
  files: ['access', 'accounts', 'audit', 'crypto', 'data', 'firewall'],
  backup: ['access', 'audit', 'crypto', 'files'],
  console: ['access'],
  'self-audit': ['access', 'audit', 'backup', 'console', 'crypto', 'files'],
};

const FEATURES = Object.keys(MAY_IMPORT);
const PLATFORM_FOLDERS = ['config', 'logging', 'errors', 'db', 'http', 'graphql', 'shield', 'net'];
const PLATFORM_FILES = [
  'clock',
  'context',
  'data-dir',
  'feature',
  'maintenance',
  'progress-bar',
  'project',
  'schema',
  'server',
  'services',
  'settle-within',
];
const PLATFORM = `^src/(${PLATFORM_FOLDERS.join('|')})/|^src/(${PLATFORM_FILES.join('|')})\\.ts$`;
const folders = (names) => `^src/(${names.join('|')})/`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'A cycle between files (types included) means two files are one thing, or one of them is in the wrong place. ' +
        "The app's models may relate both ways (a post's comments, a comment's post): TypeORM and the data API take the targets as thunks.",
      from: { path: '^src/', pathNot: '^src/models/' },
      to: { circular: true },
    },
    {
      name: 'platform-imports-no-feature',
      severity: 'error',
      comment: 'The platform is what every feature stands on: it learns about features only through the Feature contract.',
      from: { path: PLATFORM },
      to: { path: folders(FEATURES) },
    },
    ...FEATURES.map((feature) => ({
      name: `feature-boundary-${feature}`,
      severity: 'error',
      comment: `${feature} may import the platform and: ${MAY_IMPORT[feature].join(', ') || 'no other feature'}.`,
      from: { path: `^src/${feature}/` },
      to: { path: folders(FEATURES.filter((other) => other !== feature && !MAY_IMPORT[feature].includes(other))) },
    })),
    {
      name: 'no-composition-root-imports',
      severity: 'error',
      comment: 'Only the entry points use the list of features; a feature that imported it would depend on every other.',
      from: { path: '^src/', pathNot: '^src/(features|settings|main|cli)\\.ts$' },
      to: { path: '^src/(features|settings|main|cli)\\.ts$' },
    },
    {
      name: 'console-app-is-browser-code',
      severity: 'error',
      comment: 'The console app runs in the browser and talks to the server only through the public GraphQL API.',
      from: { path: '^src/console/app/' },
      to: { path: '^src/', pathNot: '^src/console/app/' },
    },
    {
      name: 'server-does-not-import-console-app',
      severity: 'error',
      comment: 'The console app is bundled for the browser (bin/build-console.js); the server serves the built files.',
      from: { path: '^src/', pathNot: '^src/console/app/' },
      to: { path: '^src/console/app/' },
    },
    {
      name: 'no-unknown-folder',
      severity: 'error',
      comment: 'A new folder under src/ must be named here: as a feature in MAY_IMPORT, or as platform.',
      from: { path: '^src/' },
      to: { path: '^src/[^/]+/', pathNot: `${folders(FEATURES)}|${PLATFORM}` },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['cjs', 'es6'],
  },
};
