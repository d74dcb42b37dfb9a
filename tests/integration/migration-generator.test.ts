import { appTables } from '../support/test-tables';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { FrozenClock } from '../../src/clock';
import { createDataSource } from '../../src/db/data-source';
import { generateMigration } from '../../src/db/migration-generator';
import { PROJECT_ROOT } from '../../src/project';
import { TestDatabase, createTestDatabase } from '../support/test-database';

@Entity('gadgets')
class Gadget {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  displayName!: string;

  @Column({ type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;
}

describe('bastion migrate generate', () => {
  let database: TestDatabase;
  let migrationsDir: string;
  beforeAll(async () => {
    database = await createTestDatabase();
    migrationsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-migrations-'));
    fs.copyFileSync(path.join(PROJECT_ROOT, 'migrations', 'index.ts'), path.join(migrationsDir, 'index.ts'));
  });
  afterAll(async () => {
    await database.drop();
    fs.rmSync(migrationsDir, { recursive: true, force: true });
  });

  it('writes the snake_case SQL for a new entity, registers it, and reports nothing once applied', async () => {
    const dataSource = createDataSource({ url: database.url, poolSize: 1, ...appTables(Gadget) });
    await dataSource.initialize();
    try {
      const generated = await generateMigration(dataSource, 'AddGadgets', migrationsDir, new FrozenClock('2026-11-26T00:00:00.000Z'));
      expect(generated).toMatchObject({ className: 'AddGadgets1795651200000', statements: 1 });
      const source = fs.readFileSync(generated!.file, 'utf8');
      expect(source).toContain('CREATE TABLE "gadgets"');
      expect(source).toContain('"display_name" text NOT NULL');
      expect(source).toContain('"created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()');
      expect(source).toContain('DROP TABLE "gadgets"');

      const index = fs.readFileSync(path.join(migrationsDir, 'index.ts'), 'utf8');
      expect(index).toContain("import { AddGadgets1795651200000 } from './1795651200000-AddGadgets';");
      expect(index).toMatch(/MIGRATIONS: Function\[\] = \[Init\d+, (\w+, )*AddGadgets1795651200000\]/);

      const { upQueries } = await dataSource.driver.createSchemaBuilder().log();
      for (const { query } of upQueries) await dataSource.query(query);
      expect(await generateMigration(dataSource, 'Again', migrationsDir, new FrozenClock())).toBeUndefined();
    } finally {
      await dataSource.destroy();
    }
  });

  it('refuses a name that is not PascalCase', async () => {
    const dataSource = createDataSource({ url: database.url, poolSize: 1, ...appTables() });
    await dataSource.initialize();
    try {
      await expect(generateMigration(dataSource, 'drop table', migrationsDir, new FrozenClock())).rejects.toThrow(/PascalCase/);
    } finally {
      await dataSource.destroy();
    }
  });
});
