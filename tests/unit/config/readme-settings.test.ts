import fs from 'node:fs';
import path from 'node:path';
import { SETTINGS } from '../../../src/settings';
import { PROJECT_ROOT } from '../../../src/project';

describe('README configuration table', () => {
  const readme = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');

  it.each(Object.values(SETTINGS).map((setting) => [setting.env]))('documents %s', (name) => {
    expect(readme).toMatch(new RegExp(`^\\| \`${name}\` \\|`, 'm'));
  });
});
