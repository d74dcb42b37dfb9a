import fs from 'node:fs';
import path from 'node:path';
import { SETTINGS } from '../../src/settings';
import { PROJECT_ROOT } from '../../src/project';

/**
 * No Docker engine runs in CI, so the image is checked by reading the Dockerfile: the properties
 * a production deployment relies on, which a later edit could quietly lose.
 */

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

interface Stage {
  readonly image: string;
  readonly name?: string;
  readonly instructions: readonly Instruction[];
}

/** Instructions in order, with continuation lines joined and comments dropped. */
function parseInstructions(text: string): Instruction[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    // Comment lines may sit inside a continued instruction; Docker skips them there too.
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const joined = `${pending}${line}`.trim();
    pending = '';
    if (joined) logical.push(joined);
  }
  return logical.map((line) => {
    const match = /^(\S+)\s*(.*)$/.exec(line)!;
    return { keyword: match[1].toUpperCase(), args: match[2] };
  });
}

function parseStages(text: string): Stage[] {
  const stages: { image: string; name?: string; instructions: Instruction[] }[] = [];
  for (const instruction of parseInstructions(text)) {
    if (instruction.keyword === 'FROM') {
      const words = withoutFlags(instruction.args.split(/\s+/));
      const asIndex = words.findIndex((word) => word.toUpperCase() === 'AS');
      stages.push({ image: words[0], name: asIndex > 0 ? words[asIndex + 1] : undefined, instructions: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1].instructions.push(instruction);
    }
  }
  return stages;
}

function withoutFlags(words: readonly string[]): string[] {
  return words.filter((word) => !word.startsWith('--'));
}

/** The image a stage really starts from, following `FROM <earlier stage>`. */
function baseImage(stages: readonly Stage[], stage: Stage): string {
  const earlier = stages.find((candidate) => candidate !== stage && candidate.name !== undefined && candidate.name === stage.image);
  return earlier ? baseImage(stages, earlier) : stage.image;
}

/** Exec form (JSON array) only: the shell form puts /bin/sh in front and it swallows signals. */
function execForm(args: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((part) => typeof part === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** ENV in both spellings: `ENV A=1 B="2"` and the legacy `ENV A 1`. */
function envValues(stage: Stage): Map<string, string> {
  const values = new Map<string, string>();
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'ENV') continue;
    const first = args.split(/\s+/)[0];
    if (!first.includes('=')) {
      values.set(first, unquote(args.slice(first.length)));
      continue;
    }
    for (const pair of args.match(/[^\s=]+=("[^"]*"|'[^']*'|\S*)/g) ?? []) {
      const eq = pair.indexOf('=');
      values.set(pair.slice(0, eq), unquote(pair.slice(eq + 1)));
    }
  }
  return values;
}

function unquote(value: string): string {
  return value.trim().replace(/^(["'])(.*)\1$/, '$2');
}

/** Source paths of a COPY or ADD, without the flags and the destination. */
function copySources(instruction: Instruction): string[] {
  const parts = execForm(instruction.args) ?? withoutFlags(instruction.args.split(/\s+/));
  return parts.slice(0, -1);
}

const FORBIDDEN_SOURCES: readonly { what: string; pattern: RegExp }[] = [
  { what: '.env', pattern: /(^|\/)\.env(\..*)?\/?$/ },
  { what: '*.pem', pattern: /\.pem$/ },
  { what: '*.key', pattern: /\.key$/ },
  { what: '.bastion', pattern: /(^|\/)\.bastion(\/|$)/ },
  { what: '.git', pattern: /(^|\/)\.git(\/|$)/ },
];

/** Patterns in .dockerignore still in force: a later `!pattern` line takes the exclusion back. */
function ignoredPatterns(text: string): Set<string> {
  const ignored = new Set<string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    const pattern = line
      .replace(/^!/, '')
      .replace(/^\.?\//, '')
      .replace(/\/+$/, '');
    if (negated) ignored.delete(pattern);
    else ignored.add(pattern);
  }
  return ignored;
}

describe('Dockerfile', () => {
  const dockerfile = fs.readFileSync(path.join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
  const dockerignore = fs.readFileSync(path.join(PROJECT_ROOT, '.dockerignore'), 'utf8');
  const stages = parseStages(dockerfile);
  const final = stages[stages.length - 1];
  const finalOf = (keyword: string) => final.instructions.filter((instruction) => instruction.keyword === keyword);

  it('builds in one stage and runs from another, so compilers and dev dependencies stay out of the image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
  });

  it('runs on Node 22 (the LTS line)', () => {
    expect(baseImage(stages, final)).toMatch(/^(docker\.io\/)?(library\/)?node:22([.-]|$)/);
  });

  it('runs as a non-root user', () => {
    const users = finalOf('USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1].args.split(':')[0].trim();
    expect(['', 'root', '0']).not.toContain(user);
  });

  it('has a HEALTHCHECK on /healthz', () => {
    const checks = finalOf('HEALTHCHECK');
    expect(checks.length).toBeGreaterThan(0);
    const check = checks[checks.length - 1].args;
    expect(check).not.toMatch(/^NONE\b/i);
    expect(check).toContain('/healthz');
  });

  it('sets NODE_ENV=production, which turns on the safe defaults and refuses the embedded PostgreSQL', () => {
    expect(envValues(final).get('NODE_ENV')).toBe('production');
  });

  it('starts node itself in exec form, so SIGTERM reaches the graceful shutdown', () => {
    const entrypoint = finalOf('ENTRYPOINT').at(-1);
    const cmd = finalOf('CMD').at(-1);
    const command = entrypoint ?? cmd;
    expect(command).toBeDefined();
    const argv = execForm(command!.args);
    expect(argv).toBeDefined();
    expect(path.posix.basename(argv![0])).toBe('node');
    const full = [...argv!, ...(entrypoint && cmd ? (execForm(cmd.args) ?? []) : [])];
    expect(full).not.toContain('npm');
    // The script must be one the build produces: dist/<x>.js comes from <x>.ts.
    const script = full.find((arg) => arg.startsWith('dist/') && arg.endsWith('.js'));
    expect(script).toBeDefined();
    expect(fs.existsSync(path.join(PROJECT_ROOT, script!.replace(/^dist\//, '').replace(/\.js$/, '.ts')))).toBe(true);
  });

  it('exposes the port Bastion listens on in production', () => {
    const ports = finalOf('EXPOSE').flatMap(({ args }) => args.split(/\s+/).map((port) => port.split('/')[0]));
    expect(ports).toContain(String(SETTINGS.port.fallback('production')));
  });

  it('copies no secrets, local state or git history into any stage', () => {
    const copied = stages.flatMap((stage) =>
      stage.instructions.filter(({ keyword }) => keyword === 'COPY' || keyword === 'ADD').flatMap(copySources),
    );
    expect(copied.length).toBeGreaterThan(0);
    const ignored = ignoredPatterns(dockerignore);
    for (const source of copied) {
      for (const { what, pattern } of FORBIDDEN_SOURCES) {
        expect({ source, copies: pattern.test(source.replace(/\/+$/, '')) }).toEqual({ source, copies: false });
        // Copying the whole context is safe only while .dockerignore keeps these out of it.
        if (/^\.\/?$/.test(source)) expect({ source, ignored: [...ignored] }).toEqual({ source, ignored: expect.arrayContaining([what]) });
      }
    }
  });

  it('gives the build stage everything tsconfig.build.json compiles', () => {
    const { include } = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    const copied = stages
      .slice(0, -1)
      .flatMap((stage) => stage.instructions.filter(({ keyword }) => keyword === 'COPY').flatMap(copySources))
      .map((source) => source.replace(/^\.\//, '').replace(/\/+$/, ''));
    const ignored = ignoredPatterns(dockerignore);
    for (const entry of include) {
      expect({ entry, copied: copied.includes(entry) || copied.includes('.') }).toEqual({ entry, copied: true });
      expect({ entry, ignored: ignored.has(entry) }).toEqual({ entry, ignored: false });
    }
  });

  it("gives the build stage the files npm's build script runs", () => {
    const { scripts } = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const copied = stages
      .slice(0, -1)
      .flatMap((stage) => stage.instructions.filter(({ keyword }) => keyword === 'COPY').flatMap(copySources))
      .map((source) => source.replace(/^\.\//, '').replace(/\/+$/, ''));
    const files = [...scripts.build.matchAll(/\bnode\s+(\S+\.js)\b/g)].map((match) => match[1]);
    for (const file of files) {
      const inContext = copied.some((source) => source === '.' || file === source || file.startsWith(`${source}/`));
      expect({ file, copied: inContext }).toEqual({ file, copied: true });
    }
  });

  it('.dockerignore keeps secrets, local state, git history and host node_modules out of the build context', () => {
    const ignored = ignoredPatterns(dockerignore);
    for (const entry of ['.env', '.git', 'node_modules', '.bastion']) expect([...ignored]).toContain(entry);
  });
});
