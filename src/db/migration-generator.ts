import fs from 'node:fs';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import type { Clock } from '../clock';

export interface GeneratedMigration {
  readonly file: string;
  readonly className: string;
  readonly statements: number;
}

/**
 * Writes a migration with the SQL that brings the database to the entities' shape (TypeORM's own
 * schema diff, as `typeorm migration:generate` uses) and registers it in migrations/index.ts.
 * Returns undefined when the schema is already in step.
 */
export async function generateMigration(
  dataSource: DataSource,
  name: string,
  migrationsDir: string,
  clock: Clock,
): Promise<GeneratedMigration | undefined> {
  if (!/^[A-Z][A-Za-z0-9]*$/.test(name)) {
    throw new Error(`Migration name must be PascalCase letters and digits, such as AddPosts (got "${name}")`);
  }
  const sql = await dataSource.driver.createSchemaBuilder().log();
  if (sql.upQueries.length === 0) return undefined;

  const timestamp = clock.now().getTime();
  const className = `${name}${timestamp}`;
  const escape = (query: string) => query.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${');
  const render = (queries: { query: string; parameters?: unknown[] }[]) =>
    queries
      .map(
        ({ query, parameters }) =>
          `    await queryRunner.query(\`${escape(query)}\`${parameters?.length ? `, ${JSON.stringify(parameters)}` : ''});`,
      )
      .join('\n');
  const source = `import { MigrationInterface, QueryRunner } from 'typeorm';

export class ${className} implements MigrationInterface {
  name = '${className}';

  public async up(queryRunner: QueryRunner): Promise<void> {
${render(sql.upQueries)}
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
${render([...sql.downQueries].reverse())}
  }
}
`;
  const file = path.join(migrationsDir, `${timestamp}-${name}.ts`);
  fs.writeFileSync(file, source);
  registerMigration(path.join(migrationsDir, 'index.ts'), className, `./${timestamp}-${name}`);
  return { file, className, statements: sql.upQueries.length };
}

function registerMigration(indexFile: string, className: string, modulePath: string): void {
  let index = fs.readFileSync(indexFile, 'utf8');
  const importLines = index.match(/^import .*;$/gm) ?? [];
  const lastImport = importLines[importLines.length - 1];
  const newImport = `import { ${className} } from '${modulePath}';`;
  index = lastImport ? index.replace(lastImport, `${lastImport}\n${newImport}`) : `${newImport}\n${index}`;
  index = index.replace(/export const MIGRATIONS: Function\[\] = \[([\s\S]*?)\];/, (_all, list: string) => {
    const names = list
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean);
    return `export const MIGRATIONS: Function[] = [${[...names, className].join(', ')}];`;
  });
  fs.writeFileSync(indexFile, index);
}
