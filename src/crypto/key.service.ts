import { DataSource, IsNull } from 'typeorm';
import type { AuditLog } from '../audit/audit-log';
import type { Clock } from '../clock';
import { computeBlindIndex } from './blind-index';
import { EncryptedColumnTransformer, blindIndexedProperties } from './encrypted-column';
import { EncryptionKeyRecord } from './encryption-key.entity';
import { DecryptionFailedError, open, seal } from './envelope';
import type { Keyring } from './keyring';

export interface EncryptedColumnInfo {
  readonly entity: string;
  readonly table: string;
  readonly column: string;
  /** The AAD domain, "table.column". */
  readonly domain: string;
  readonly primaryKey: string;
}

export interface ColumnKeyCounts {
  readonly table: string;
  readonly column: string;
  /** Rows per key id (NULLs are not encrypted and not counted). */
  readonly rowsByKid: Readonly<Record<string, number>>;
}

export interface KeyStatus {
  readonly currentKid: string;
  readonly keys: readonly { kid: string; inKeyring: boolean; retiredAt: Date | null }[];
  readonly columns: readonly ColumnKeyCounts[];
  /** Data outside the columns (file contents), items per key id. */
  readonly keyedData: readonly KeyedDataCounts[];
}

export interface KeyedDataCounts {
  readonly label: string;
  readonly byKid: Readonly<Record<string, number>>;
}

/** A value that no key of the keyring opens (a forgotten key, or tampering): skipped, reported. */
export interface UnreadableValue {
  readonly table: string;
  readonly column: string;
  readonly id: string;
}

export interface ReencryptResult {
  readonly rewritten: number;
  readonly unreadable: readonly UnreadableValue[];
  /** What was left on an old key on purpose, said for the operator (uploads still arriving); absent when nothing was. */
  readonly left?: readonly string[];
}

/** `label`: what a progress bar is named when it is not a column (file contents). */
export type ReencryptProgress = (progress: { table: string; column: string; done: number; total: number; label?: string }) => void;

/** The brand of a KeyedData service. */
export const KEYED_DATA = Symbol.for('bastion.keyed-data');

/**
 * Data a feature keeps under the data keys outside encrypted columns (the files feature's
 * contents): it counts and re-encrypts its own, and KeyService counts it in, so `keys status`
 * shows it, `keys reencrypt` rewrites it, and a key it still uses is never marked retired. Crypto
 * cannot know the features above it: a feature contributes by providing a service that is one
 * (`isKeyedData` finds them among the services).
 */
export interface KeyedData {
  readonly [KEYED_DATA]: true;
  /** What it is, for status lines and progress bars ("file contents"). */
  readonly label: string;
  /** Items per key id; any count keeps that key in use. */
  countByKid(): Promise<Record<string, number>>;
  /**
   * Rewrites every item not on `currentKid` under it. Resumable and safe to kill: an item is on
   * the old key or the new one, never half. `onProgress`: items done out of the total to do.
   */
  reencrypt(currentKid: string, onProgress: (done: number, total: number) => void): Promise<ReencryptResult>;
}

export function isKeyedData(value: unknown): value is KeyedData {
  return typeof value === 'object' && value !== null && (value as Partial<KeyedData>)[KEYED_DATA] === true;
}

/** The KeyedData among a process's services (getters are read once each; services are built by then). */
export function keyedDataIn(services: object): KeyedData[] {
  return Object.values(services).filter(isKeyedData);
}

/** A row as a batch rewrite reads it: its key, the encrypted value, and the column it may write. */
interface RowToRewrite {
  readonly id: string;
  readonly value: string | null;
  readonly target: string | null;
}

/** One column rewritten in batches (`KeyService.rewriteInBatches`). */
interface ColumnRewrite {
  readonly table: string;
  readonly primaryKey: string;
  /** The encrypted column read (and named when a value is unreadable). */
  readonly column: string;
  /** The column written: the same one (re-encryption) or its blind index. */
  readonly target: string;
  /** The progress bar's total. */
  readonly total: number;
  /** Read only rows whose `column` is set. */
  readonly onlyNotNull: boolean;
  /** What progress counts: the rows rewritten (the total counts those to do) or every row read. */
  readonly progressCounts: 'rewritten' | 'read';
  /** The value to write, or null to leave the row; throws DecryptionFailedError when no key opens it. */
  readonly rewrite: (row: RowToRewrite) => string | null;
}

function batchSizeOf(options: { batchSize?: number }): number {
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error('batch size must be a whole number above 0');
  return batchSize;
}

/** A blind-index rotation asked for without a next key to rotate to. */
export class NoBlindIndexRotationError extends Error {
  constructor() {
    super(
      'No blind-index key rotation is under way: set BASTION_BLIND_INDEX_KEY_NEXT to a new key (bastion keys generate) ' +
        'on every instance first, then run this again.',
    );
    this.name = 'NoBlindIndexRotationError';
  }
}

/** A blind-indexed column: where its values and their indexes live, and how a value is indexed. */
interface BlindIndexedColumn {
  readonly table: string;
  readonly column: string;
  readonly indexColumn: string;
  readonly primaryKey: string;
  readonly property: ReturnType<typeof blindIndexedProperties>[number];
}

function blindIndexedColumns(dataSource: DataSource): BlindIndexedColumn[] {
  return dataSource.entityMetadatas.flatMap((metadata) =>
    typeof metadata.target !== 'function'
      ? []
      : blindIndexedProperties(metadata.target).map((property) => ({
          table: metadata.tableName,
          column: metadata.findColumnWithPropertyName(property.property)!.databaseName,
          indexColumn: metadata.findColumnWithPropertyName(property.indexProperty)!.databaseName,
          primaryKey: metadata.primaryColumns[0].databaseName,
          property,
        })),
  );
}

/** The keyring lacks a key that rows may still use. */
export class MissingKeyError extends Error {
  constructor(readonly kids: readonly string[]) {
    super(
      `Encryption key${kids.length > 1 ? 's' : ''} ${kids.map((kid) => `"${kid}"`).join(', ')} missing from BASTION_ENCRYPTION_KEYS, but ` +
        `rows may still use ${kids.length > 1 ? 'them' : 'it'}. ` +
        'Put it back and run `bastion keys reencrypt` before removing a key, or run `bastion keys forget <kid> --force` to accept that those values are lost.',
    );
    this.name = 'MissingKeyError';
  }
}

/** Every @Encrypted column the DataSource knows, with its table, column and AAD domain. */
export function encryptedColumns(dataSource: DataSource): EncryptedColumnInfo[] {
  const columns: EncryptedColumnInfo[] = [];
  for (const metadata of dataSource.entityMetadatas) {
    for (const column of metadata.columns) {
      if (!(column.transformer instanceof EncryptedColumnTransformer)) continue;
      const domain = `${metadata.tableName}.${column.databaseName}`;
      if (column.transformer.domain !== domain) {
        throw new Error(
          `Encrypted column ${metadata.name}.${column.propertyName}: AAD domain "${column.transformer.domain}" does not match ${domain}`,
        );
      }
      if (metadata.primaryColumns.length !== 1) throw new Error(`Encrypted column ${domain}: its table needs a single-column primary key`);
      columns.push({
        entity: metadata.name,
        table: metadata.tableName,
        column: column.databaseName,
        domain,
        primaryKey: metadata.primaryColumns[0].databaseName,
      });
    }
  }
  return columns;
}

/**
 * Key lifecycle over the data: which keys are in use, re-encryption under the current key, and
 * the startup check that no key still in use has left the keyring.
 */
export class KeyService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly keyring: Keyring,
    private readonly clock: Clock,
    /** Re-encryptions and forgotten keys are security events (the CLI passes the log). */
    private readonly audit?: AuditLog,
    /** Data under the keys outside the columns, as the features that keep it provide it. */
    private readonly keyedData: readonly KeyedData[] = [],
  ) {}

  /**
   * At boot (and before re-encrypting): refuses a keyring missing a key still in use, then records
   * the current key as in use. One transaction: a refused keyring leaves no trace.
   */
  async assertKeyringCoversData(): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const records = manager.getRepository(EncryptionKeyRecord);
      const inUse = await records.findBy({ retiredAt: IsNull() });
      const missing = inUse.map((record) => record.kid).filter((kid) => !this.keyring.has(kid));
      if (missing.length > 0) throw new MissingKeyError(missing);
      await records
        .createQueryBuilder()
        .insert()
        .values({ kid: this.keyring.currentKid, firstUsedAt: this.clock.now(), retiredAt: null })
        .orUpdate(['retired_at'], ['kid'])
        .execute();
    });
  }

  async status(): Promise<KeyStatus> {
    const records = await this.dataSource.getRepository(EncryptionKeyRecord).find({ order: { firstUsedAt: 'ASC' } });
    const columns: ColumnKeyCounts[] = [];
    for (const info of encryptedColumns(this.dataSource)) {
      const rows: { kid: string; rows: string }[] = await this.dataSource.query(
        `SELECT split_part(${quote(info.column)}, '.', 2) AS kid, count(*) AS rows FROM ` +
          `${quote(info.table)} WHERE ${quote(info.column)} IS NOT NULL GROUP BY 1 ORDER BY 1`,
      );
      columns.push({
        table: info.table,
        column: info.column,
        rowsByKid: Object.fromEntries(rows.map((row) => [row.kid, Number(row.rows)])),
      });
    }
    const known = new Set(records.map((record) => record.kid));
    const keys = [
      ...records.map((record) => ({ kid: record.kid, inKeyring: this.keyring.has(record.kid), retiredAt: record.retiredAt })),
      ...this.keyring
        .kids()
        .filter((kid) => !known.has(kid))
        .map((kid) => ({ kid, inKeyring: true, retiredAt: null })),
    ];
    const keyedData: KeyedDataCounts[] = [];
    for (const data of this.keyedData) keyedData.push({ label: data.label, byKid: await data.countByKid() });
    return { currentKid: this.keyring.currentKid, keys, columns, keyedData };
  }

  /**
   * Rewrites every value not on the current key, walking each table by primary key in batches,
   * one transaction per batch. Idempotent and resumable: a value already on the current key is
   * skipped, so a rerun after a crash finishes the job. Safe beside a running server: rows are
   * locked while rewritten. Keys left with no rows are then marked retired.
   */
  async reencrypt(options: { batchSize?: number; onProgress?: ReencryptProgress } = {}): Promise<ReencryptResult> {
    const batchSize = batchSizeOf(options);
    // The key about to be written with must be on record before the first value uses it.
    await this.assertKeyringCoversData();
    const current = this.keyring.currentKid;
    let rewritten = 0;
    const unreadable: UnreadableValue[] = [];
    for (const info of encryptedColumns(this.dataSource)) {
      const [{ total }]: { total: string }[] = await this.dataSource.query(
        `SELECT count(*) AS total FROM ${quote(info.table)} WHERE ${quote(info.column)} IS NOT NULL AND split_part(${quote(info.column)}, '.', 2) <> $1`,
        [current],
      );
      rewritten += await this.rewriteInBatches(
        {
          table: info.table,
          primaryKey: info.primaryKey,
          column: info.column,
          target: info.column,
          total: Number(total),
          onlyNotNull: false,
          progressCounts: 'rewritten',
          rewrite: (row) =>
            row.value === null || row.value.startsWith(`v1.${current}.`)
              ? null
              : seal(this.keyring, open(this.keyring, row.value, info.domain), info.domain),
        },
        batchSize,
        unreadable,
        options.onProgress,
      );
    }
    const left: string[] = [];
    for (const data of this.keyedData) {
      const done = await data.reencrypt(current, (count, total) =>
        options.onProgress?.({ table: data.label, column: '', done: count, total, label: data.label }),
      );
      rewritten += done.rewritten;
      unreadable.push(...done.unreadable);
      left.push(...(done.left ?? []));
    }
    await this.retireUnusedKeys();
    await this.audit?.append(this.dataSource.manager, {
      action: 'keys_reencrypted',
      outcome: unreadable.length === 0 ? 'success' : 'failure',
      targetType: 'encryption_key',
      targetId: this.keyring.currentKid,
      metadata: { rewritten, unreadable: unreadable.length },
    });
    return { rewritten, unreadable, ...(left.length > 0 ? { left } : {}) };
  }

  /**
   * The middle step of a blind-index key rotation: rewrites every blind index under the next root
   * (BASTION_BLIND_INDEX_KEY_NEXT), walking each table by primary key in batches, one transaction
   * per batch, rows locked while rewritten. Idempotent and resumable: an index already under the
   * next root is left alone. While it runs, servers write new indexes under the next root and look
   * values up under both, so nothing stops answering.
   */
  async rotateBlindIndexes(options: { batchSize?: number; onProgress?: ReencryptProgress } = {}): Promise<ReencryptResult> {
    if (!this.keyring.rotatingBlindIndexes) throw new NoBlindIndexRotationError();
    const batchSize = batchSizeOf(options);
    let rewritten = 0;
    const unreadable: UnreadableValue[] = [];
    for (const info of blindIndexedColumns(this.dataSource)) {
      const [{ total }]: { total: string }[] = await this.dataSource.query(
        `SELECT count(*) AS total FROM ${quote(info.table)} WHERE ${quote(info.column)} IS NOT NULL`,
      );
      rewritten += await this.rewriteInBatches(
        {
          table: info.table,
          primaryKey: info.primaryKey,
          column: info.column,
          target: info.indexColumn,
          total: Number(total),
          onlyNotNull: true,
          progressCounts: 'read',
          rewrite: (row) => {
            const value = info.property.transformer.from(row.value);
            const index = computeBlindIndex(this.keyring, info.property.transformer.domain, String(value), info.property.normalize);
            return index === row.target ? null : index;
          },
        },
        batchSize,
        unreadable,
        options.onProgress,
      );
    }
    await this.audit?.append(this.dataSource.manager, {
      action: 'blind_indexes_rotated',
      outcome: unreadable.length === 0 ? 'success' : 'failure',
      targetType: 'blind_index_key',
      metadata: { rewritten, unreadable: unreadable.length },
    });
    return { rewritten, unreadable };
  }

  /**
   * Walks one table by primary key in batches (keyset pagination on the key's own type, so its
   * index serves every batch), one transaction per batch, rows locked while rewritten; writes
   * `target` where `rewrite` returns a value. A value no key opens is reported in `unreadable`
   * and left. Returns how many rows were written.
   */
  private async rewriteInBatches(
    walk: ColumnRewrite,
    batchSize: number,
    unreadable: UnreadableValue[],
    onProgress: ReencryptProgress | undefined,
  ): Promise<number> {
    const [table, pk, column, target] = [quote(walk.table), quote(walk.primaryKey), quote(walk.column), quote(walk.target)];
    const report = (done: number) => onProgress?.({ table: walk.table, column: walk.target, done, total: walk.total });
    let done = 0;
    let written = 0;
    let after: unknown = null;
    report(done);
    for (;;) {
      const conditions = [...(walk.onlyNotNull ? [`${column} IS NOT NULL`] : []), ...(after === null ? [] : [`${pk} > $2`])];
      const batch = await this.dataSource.transaction(async (manager) => {
        const rows: RowToRewrite[] = await manager.query(
          `SELECT ${pk} AS id, ${column} AS value, ${target} AS target FROM ${table}
           ${conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`} ORDER BY ${pk} LIMIT $1 FOR UPDATE`,
          after === null ? [batchSize] : [batchSize, after],
        );
        let changed = 0;
        for (const row of rows) {
          let replacement: string | null;
          try {
            replacement = walk.rewrite(row);
          } catch (error) {
            if (!(error instanceof DecryptionFailedError)) throw error;
            unreadable.push({ table: walk.table, column: walk.column, id: String(row.id) });
            continue;
          }
          if (replacement === null) continue;
          await manager.query(`UPDATE ${table} SET ${target} = $1 WHERE ${pk} = $2`, [replacement, row.id]);
          changed += 1;
        }
        return { rows, changed };
      });
      if (batch.rows.length === 0) break;
      after = batch.rows[batch.rows.length - 1].id;
      done += walk.progressCounts === 'rewritten' ? batch.changed : batch.rows.length;
      written += batch.changed;
      report(done);
    }
    return written;
  }

  /** Accepts the loss of every value under `kid`: the keyring may drop it. */
  async forget(kid: string): Promise<void> {
    if (kid === this.keyring.currentKid) throw new Error(`"${kid}" is the current key; make another key current first`);
    await this.dataSource.transaction(async (manager) => {
      const { affected } = await manager.getRepository(EncryptionKeyRecord).update({ kid }, { retiredAt: this.clock.now() });
      if (!affected) throw new Error(`no key "${kid}" has ever encrypted data here`);
      await this.audit?.append(manager, {
        action: 'key_forgotten',
        outcome: 'success',
        targetType: 'encryption_key',
        targetId: kid,
        metadata: {},
      });
    });
  }

  private async retireUnusedKeys(): Promise<void> {
    const { columns, keyedData } = await this.status();
    const used = new Set([
      ...columns.flatMap((column) => Object.keys(column.rowsByKid)),
      ...keyedData.flatMap((data) => Object.keys(data.byKid)),
    ]);
    const records = this.dataSource.getRepository(EncryptionKeyRecord);
    for (const record of await records.findBy({ retiredAt: IsNull() })) {
      if (record.kid !== this.keyring.currentKid && !used.has(record.kid))
        await records.update({ kid: record.kid }, { retiredAt: this.clock.now() });
    }
  }
}

/** Identifiers come from entity metadata, never from input; quoting still keeps them exact. */
function quote(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}
