import type { ClientBase } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { Readable, Writable } from 'node:stream';
import type { ArchiveTable } from './archive-records';

/**
 * Tables whose rows stay out of archives: what they hold describes this machine or the next
 * minute, not the app's data. A restore leaves the target's rows in them alone.
 */
export const EXCLUDED_TABLES: Readonly<Record<string, string>> = Object.freeze({
  backups: 'the catalogue of archive files on this machine; a restore keeps the current one',
  rate_limits: 'rate-limit counters that expire within minutes',
});

/**
 * COPY text depends on these session settings (dates, floats, bytea); archive, restore and
 * verification all use the same ones, so a table's SHA-256 is reproducible. Synchronised scans
 * are off: a scan must start at the table's first page for the order (and the checksum) to repeat.
 */
export const COPY_SESSION_SETTINGS = [
  "SET TIME ZONE 'UTC'",
  "SET datestyle = 'ISO, YMD'",
  "SET intervalstyle = 'postgres'",
  'SET extra_float_digits = 1',
  "SET bytea_output = 'hex'",
  "SET client_encoding = 'UTF8'",
  "SET standard_conforming_strings = 'on'",
  'SET synchronize_seqscans = off',
];

export async function prepareCopySession(client: ClientBase): Promise<void> {
  for (const statement of COPY_SESSION_SETTINGS) await client.query(statement);
}

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;
/** Schema-qualified: a search_path set on the role or database cannot point a COPY elsewhere. */
const qualified = (table: string) => `"public".${quote(table)}`;

/**
 * The public tables (minus the excluded ones), each after the tables it references, with their
 * stored columns. Plain tables only: a partitioned table's rows are in its partitions, which are
 * plain tables themselves (COPY cannot read the parent).
 */
export async function listTables(client: ClientBase): Promise<ArchiveTable[]> {
  const { rows: columns } = await client.query<{ table: string; column: string }>(
    `SELECT c.relname AS "table", a.attname AS "column"
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      WHERE n.nspname = 'public' AND c.relkind = 'r'
        -- A table an extension owns (PostGIS's spatial_ref_sys) is the extension's to create.
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
      ORDER BY c.relname, a.attnum`,
  );
  const { rows: references } = await client.query<{ child: string; parent: string }>(
    `SELECT child.relname AS child, parent.relname AS parent
       FROM pg_constraint k
       JOIN pg_class child ON child.oid = k.conrelid
       JOIN pg_class parent ON parent.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = child.relnamespace
      WHERE k.contype = 'f' AND n.nspname = 'public' AND child.oid <> parent.oid`,
  );
  const tables = new Map<string, string[]>();
  for (const { table, column } of columns) {
    if (table in EXCLUDED_TABLES) continue;
    const list = tables.get(table) ?? [];
    list.push(column);
    tables.set(table, list);
  }
  return loadOrder([...tables.keys()], references).map((name) => ({ name, columns: tables.get(name)! }));
}

/** Topological order (parents first, then by name, so the same schema always gives the same order). */
function loadOrder(names: readonly string[], references: readonly { child: string; parent: string }[]): string[] {
  const parents = new Map(names.map((name) => [name, new Set<string>()]));
  for (const { child, parent } of references) if (parents.has(child) && parents.has(parent)) parents.get(child)!.add(parent);
  const ordered: string[] = [];
  const placed = new Set<string>();
  while (ordered.length < names.length) {
    const ready = names.filter((name) => !placed.has(name) && [...parents.get(name)!].every((parent) => placed.has(parent))).sort();
    if (ready.length === 0) {
      const left = names.filter((name) => !placed.has(name));
      throw new Error(`tables ${left.join(', ')} reference each other in a cycle: they cannot be restored one after the other`);
    }
    for (const name of ready) {
      ordered.push(name);
      placed.add(name);
    }
  }
  return ordered;
}

export function copyTableOut(client: ClientBase, table: ArchiveTable): Readable {
  return client.query(copyTo(`COPY ${qualified(table.name)} (${table.columns.map(quote).join(', ')}) TO STDOUT`));
}

/** The rows of these tables, together, as the current snapshot sees them (what a progress bar counts to). */
export async function countRows(client: ClientBase, tables: readonly ArchiveTable[]): Promise<number> {
  if (tables.length === 0) return 0;
  const counts = tables.map((table) => `(SELECT count(*) FROM ${qualified(table.name)})`).join(' + ');
  const { rows } = await client.query<{ rows: string }>(`SELECT (${counts})::bigint AS rows`);
  return Number(rows[0].rows);
}

export function copyTableIn(client: ClientBase, table: ArchiveTable): Writable {
  return client.query(copyFrom(`COPY ${qualified(table.name)} (${table.columns.map(quote).join(', ')}) FROM STDIN`));
}

export async function truncateTables(client: ClientBase, names: readonly string[]): Promise<void> {
  if (names.length > 0) await client.query(`TRUNCATE ${names.map(qualified).join(', ')}`);
}

/** ACCESS SHARE on every table, as pg_dump takes: writes go on, but no TRUNCATE or DDL until the transaction ends. */
export async function lockTables(client: ClientBase, names: readonly string[]): Promise<void> {
  if (names.length > 0) await client.query(`LOCK TABLE ${names.map(qualified).join(', ')} IN ACCESS SHARE MODE`);
}

/** What `setAsideConstraints` took off, to put back. */
export interface SetAside {
  readonly foreignKeys: readonly { table: string; name: string; definition: string }[];
  readonly indexes: readonly string[];
}

/**
 * Drops the foreign keys touching these tables and their secondary indexes (not primary keys or
 * unique constraints), as pg_restore loads before it builds them: loading into a table with its
 * indexes and keys in place checks and updates them row by row, about twice as slow. Inside the
 * caller's transaction, so a failure puts everything back.
 */
export async function setAsideConstraints(client: ClientBase, names: readonly string[]): Promise<SetAside> {
  const { rows: foreignKeys } = await client.query<{ table: string; name: string; definition: string }>(
    `SELECT child.relname AS "table", k.conname AS name, pg_get_constraintdef(k.oid) AS definition
       FROM pg_constraint k
       JOIN pg_class child ON child.oid = k.conrelid
       JOIN pg_class parent ON parent.oid = k.confrelid
      WHERE k.contype = 'f' AND child.relnamespace = 'public'::regnamespace AND (child.relname = ANY($1) OR parent.relname = ANY($1))
      ORDER BY 1, 2`,
    [names],
  );
  for (const key of foreignKeys) await client.query(`ALTER TABLE ${qualified(key.table)} DROP CONSTRAINT ${quote(key.name)}`);
  const { rows: indexes } = await client.query<{ name: string; definition: string }>(
    `SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS definition
       FROM pg_index x
       JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_class i ON i.oid = x.indexrelid
      WHERE t.relnamespace = 'public'::regnamespace AND t.relname = ANY($1)
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
      ORDER BY 1`,
    [names],
  );
  for (const index of indexes) await client.query(`DROP INDEX ${qualified(index.name)}`);
  return { foreignKeys, indexes: indexes.map((index) => index.definition) };
}

/** Rebuilds what setAsideConstraints dropped; re-adding a foreign key checks every restored row once. */
export async function restoreConstraints(client: ClientBase, setAside: SetAside): Promise<void> {
  for (const definition of setAside.indexes) await client.query(definition);
  for (const key of setAside.foreignKeys)
    await client.query(`ALTER TABLE ${qualified(key.table)} ADD CONSTRAINT ${quote(key.name)} ${key.definition}`);
}

/** Every sequence owned by a column of these tables continues after the column's largest value. */
export async function resetSequences(client: ClientBase, names: readonly string[]): Promise<number> {
  const { rows } = await client.query<{ sequence: string; table: string; column: string }>(
    `SELECT s.oid::regclass::text AS sequence, t.relname AS "table", a.attname AS "column"
       FROM pg_depend d
       JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
       JOIN pg_class t ON t.oid = d.refobjid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
      WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        AND n.nspname = 'public' AND t.relname = ANY($1)`,
    [names],
  );
  for (const { sequence, table, column } of rows) {
    await client.query(`SELECT setval($1::regclass, COALESCE((SELECT max(${quote(column)}) FROM ${qualified(table)}), 0) + 1, false)`, [
      sequence,
    ]);
  }
  return rows.length;
}
