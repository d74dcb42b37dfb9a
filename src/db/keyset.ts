import { createHash } from 'node:crypto';
import { isUuid } from './uuid';
import { SqlParameters, StoredColumn, fieldExpression } from './sql-parameters';
import { decodeCursor, encodeCursor, invalidCursor } from '../graphql/pagination';

export type SortDirection = 'ASC' | 'DESC';

/** One key of a list's order: a NOT NULL stored field and a direction. The id is always the last key. */
export interface SortKey {
  readonly field: StoredColumn & { readonly name: string };
  readonly direction: SortDirection;
}

/**
 * Keyset (cursor) pagination over any order the client picks: the cursor holds the last row's
 * sort values, and the next page starts strictly after them. A row inserted meanwhile lands
 * before or after the cursor, never shifts a page (as OFFSET would). Cursors name their order:
 * one from another orderBy is refused, not misread.
 */
export class Keyset {
  private readonly signature: string;

  constructor(
    private readonly alias: string,
    readonly keys: readonly SortKey[],
  ) {
    this.signature = createHash('sha256')
      .update(keys.map((key) => `${key.field.name}:${key.direction}`).join(','))
      .digest('base64url')
      .slice(0, 8);
  }

  /** ORDER BY expressions, in order. */
  orderBy(): [string, SortDirection][] {
    return this.keys.map((key) => [fieldExpression(this.alias, key.field), key.direction]);
  }

  /** The condition "after this cursor": (k1 > v1) OR (k1 = v1 AND k2 > v2) OR …, each key in its direction. */
  after(cursor: string, parameters: SqlParameters): string {
    const values = this.decode(cursor);
    const placeholders = values.map((value) => parameters.add(value));
    const disjuncts = this.keys.map((key, index) => {
      const equalBefore = this.keys
        .slice(0, index)
        .map((earlier, at) => `${fieldExpression(this.alias, earlier.field)} = ${placeholders[at]}`);
      const comparison = `${fieldExpression(this.alias, key.field)} ${key.direction === 'ASC' ? '>' : '<'} ${placeholders[index]}`;
      return `(${[...equalBefore, comparison].join(' AND ')})`;
    });
    return `(${disjuncts.join(' OR ')})`;
  }

  cursorOf(row: object): string {
    const values = this.keys.map((key) => {
      const value = (row as Record<string, unknown>)[key.field.name];
      return value instanceof Date ? value.toISOString() : (value as string | number | boolean);
    });
    return encodeCursor([this.signature, ...values]);
  }

  private decode(cursor: string): unknown[] {
    const shape = [
      'string' as const,
      ...this.keys.map((key) =>
        key.field.kind === 'int' || key.field.kind === 'float' ? 'number' : key.field.kind === 'boolean' ? 'boolean' : 'string',
      ),
    ];
    const [signature, ...values] = decodeCursor(cursor, shape);
    if (signature !== this.signature) throw invalidCursor();
    // The signature is readable, so a forged cursor can be well-formed: each value must also fit its column.
    return values.map((value, index) => {
      const kind = this.keys[index].field.kind;
      if (kind === 'datetime') {
        if (!isIsoInstant(String(value))) throw invalidCursor();
        return new Date(String(value));
      }
      if (kind === 'id' && !isUuid(String(value))) throw invalidCursor();
      if (kind === 'int' && !(Number.isInteger(value) && Math.abs(value as number) <= 2 ** 31 - 1)) throw invalidCursor();
      if (kind === 'float' && !Number.isFinite(value)) throw invalidCursor();
      if (typeof value === 'string' && value.includes('\u0000')) throw invalidCursor();
      return value;
    });
  }
}

/** A timestamp exactly as `Date.toISOString` writes it (anything else in a cursor is forged). */
export function isIsoInstant(text: string): boolean {
  const time = Date.parse(text);
  return !Number.isNaN(time) && new Date(time).toISOString() === text;
}
