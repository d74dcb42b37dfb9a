import type { Pool } from 'pg';
import type { DataSource, ObjectLiteral } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { ApplyValueTransformers } from 'typeorm/util/ApplyValueTransformers';
import { isUuid } from './uuid';

interface EntityQuery {
  readonly text: string;
  readonly columns: readonly { readonly property: string; readonly from: ((value: unknown) => unknown) | null }[];
}

/**
 * One row of an entity by its uuid primary key, read with a single pg query and hydrated from
 * TypeORM's own metadata (column names, transformers: an encrypted column decrypts), for paths that
 * run on every request. TypeORM's find builds and rewrites its SQL on each call; this builds it once.
 */
export class EntityById {
  private readonly pool: Pool;
  private readonly queries = new Map<Function, EntityQuery>();

  constructor(private readonly dataSource: DataSource) {
    this.pool = (dataSource.driver as PostgresDriver).master as Pool;
  }

  async find<T extends ObjectLiteral>(entity: new () => T, id: string): Promise<T | null> {
    if (!isUuid(id)) return null;
    const query = this.queryFor(entity);
    const { rows } = await this.pool.query<unknown[]>({ text: query.text, values: [id], rowMode: 'array' });
    if (rows.length === 0) return null;
    const row = new entity() as Record<string, unknown>;
    query.columns.forEach(({ property, from }, index) => {
      const value = rows[0][index];
      row[property] = from && value !== null ? from(value) : value;
    });
    return row as T;
  }

  private queryFor(entity: Function): EntityQuery {
    let query = this.queries.get(entity);
    if (!query) {
      const metadata = this.dataSource.getMetadata(entity);
      const [primary] = metadata.primaryColumns;
      if (metadata.primaryColumns.length !== 1) throw new Error(`${metadata.name}: EntityById reads entities with one primary key column`);
      const columns = metadata.columns.filter((column) => !column.relationMetadata || column.isPrimary);
      query = {
        text: `SELECT ${columns.map((column) => `"${column.databaseName}"`).join(', ')} FROM "${metadata.tableName}" WHERE "${primary.databaseName}" = $1`,
        columns: columns.map((column) => {
          const transformer = column.transformer;
          return { property: column.propertyName, from: transformer ? (value: unknown) => ApplyValueTransformers.transformFrom(transformer, value) : null };
        }),
      };
      this.queries.set(entity, query);
    }
    return query;
  }
}
