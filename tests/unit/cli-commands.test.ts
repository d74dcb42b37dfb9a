import { Command } from 'commander';
import { FEATURE_COMMANDS, buildCli, commandNameOf } from '../../src/cli';
import { PLATFORM_SETTINGS } from '../../src/config/platform.settings';
import type { CommandTools, Services } from '../../src/feature';
import { FEATURES } from '../../src/features';
import { SETTINGS_TABLES } from '../../src/settings';

/** Every command's help, by its path: the whole tree as a user sees it. */
function helpTree(command: Command, prefix = ''): Record<string, string> {
  const path = `${prefix} ${command.name()}`.trim();
  return Object.assign({ [path]: command.helpInformation() }, ...command.commands.map((child) => helpTree(child, path)));
}

/** The tree as the features' own `commands` build it (what the CLI did before it loaded them lazily). */
function treeFromFeatures(): Command {
  const reference = buildCli([]);
  const tools = {
    group: (name: string, description: string) => {
      const existing = reference.commands.find((command) => command.name() === name);
      if (!existing) return reference.command(name).description(description);
      if (!existing.description().includes(description)) existing.description(`${existing.description()}; ${description}`);
      return existing;
    },
  } as unknown as CommandTools<Services>;
  const stubs = new Set(FEATURE_COMMANDS.map((entry) => entry.name));
  (reference as unknown as { commands: Command[] }).commands = reference.commands.filter((command) => !stubs.has(command.name()));
  const schema = reference.commands.find((command) => command.name() === 'schema')!;
  (reference as unknown as { commands: Command[] }).commands = reference.commands.filter((command) => command !== schema);
  for (const feature of FEATURES) feature.commands?.(reference, tools);
  (reference as unknown as { commands: Command[] }).commands.push(schema);
  return reference;
}

describe('the lazily loaded CLI', () => {
  it('lists the same commands in `bastion --help` before it loads any feature command', () => {
    expect(buildCli([]).helpInformation()).toBe(buildCli('all').helpInformation());
  });

  it("builds exactly the features' command tree, every help text included", () => {
    const features = helpTree(treeFromFeatures());
    expect(helpTree(buildCli('all'))).toEqual(features);
    for (const entry of FEATURE_COMMANDS) {
      const loaded = helpTree(buildCli([entry.name]));
      for (const [path, help] of Object.entries(loaded)) if (path.startsWith(`bastion ${entry.name}`)) expect(help).toBe(features[path]);
    }
  });

  it('loads the command the arguments name', () => {
    expect(commandNameOf(['backup', 'list'])).toBe('backup');
    expect(commandNameOf(['help', 'keys'])).toBe('keys');
    expect(commandNameOf(['--help'])).toBeUndefined();
  });

  it("reads every feature's settings, in the features' order, without loading the features", () => {
    expect(SETTINGS_TABLES).toEqual([PLATFORM_SETTINGS, ...FEATURES.flatMap((feature) => (feature.settings ? [feature.settings] : []))]);
  });

  it('has one boot hook, the keyring, which withTables runs', () => {
    expect(FEATURES.filter((feature) => feature.boot).map((feature) => feature.name)).toEqual(['crypto']);
  });
});
