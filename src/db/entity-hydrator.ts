import type { DataSource, ObjectLiteral } from 'typeorm';
import { ApplyValueTransformers } from 'typeorm/util/ApplyValueTransformers';

/**
 * Builds an entity from a row read with raw SQL, keyed by column name, as TypeORM hydrates it:
 * each column's value under its property, through the column's transformer (an encrypted column
 * decrypts). Columns the row does not hold stay unset. For paths that run on every request, where
 * TypeORM's find (which builds and rewrites its SQL on each call) would cost more than the read.
 */
export class EntityHydrator {
  private readonly columns = new Map<
    Function,
    ReadonlyMap<string, { readonly property: string; readonly from: ((value: unknown) => unknown) | null }>
  >();

  constructor(private readonly dataSource: DataSource) {}

  hydrate<T extends ObjectLiteral>(entity: new () => T, row: Readonly<Record<string, unknown>>): T {
    const hydrated = new entity() as Record<string, unknown>;
    for (const [column, value] of Object.entries(row)) {
      const target = this.columnsOf(entity).get(column);
      if (!target) throw new Error(`${entity.name} has no column ${column}`);
      hydrated[target.property] = target.from && value !== null ? target.from(value) : value;
    }
    return hydrated as T;
  }

  private columnsOf(
    entity: Function,
  ): ReadonlyMap<string, { readonly property: string; readonly from: ((value: unknown) => unknown) | null }> {
    let columns = this.columns.get(entity);
    if (!columns) {
      columns = new Map(
        this.dataSource.getMetadata(entity).columns.map((column) => {
          const transformer = column.transformer;
          return [
            column.databaseName,
            {
              property: column.propertyName,
              from: transformer ? (value: unknown) => ApplyValueTransformers.transformFrom(transformer, value) as unknown : null,
            },
          ] as const;
        }),
      );
      this.columns.set(entity, columns);
    }
    return columns;
  }
}
