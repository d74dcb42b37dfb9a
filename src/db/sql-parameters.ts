/** The kinds of value a generated API stores and compares. */
export type ColumnKind = 'id' | 'string' | 'int' | 'float' | 'boolean' | 'datetime';

/** A column as SQL sees it: its name, its kind, and whether a date-time is stored at millisecond precision. */
export interface StoredColumn {
  readonly column: string;
  readonly kind: ColumnKind;
  readonly millisecondPrecision?: boolean;
}

/** Named parameters of one SQL statement; every client value goes through one. */
export class SqlParameters {
  readonly values: Record<string, unknown> = {};
  private next = 0;

  add(value: unknown): string {
    const name = `p${this.next}`;
    this.next += 1;
    this.values[name] = value;
    return `:${name}`;
  }

  /** For `IN (…)`: TypeORM expands an array parameter written as `:...name`. */
  addList(values: readonly unknown[]): string {
    const placeholder = this.add(values);
    return `(:...${placeholder.slice(1)})`;
  }
}

/**
 * The SQL expression a stored field is compared and sorted by: date-times at millisecond precision,
 * as clients see them (a column stored at that precision as it is, so its index applies).
 */
export function fieldExpression(alias: string, field: StoredColumn): string {
  const column = `"${alias}"."${field.column}"`;
  return field.kind === 'datetime' && !field.millisecondPrecision ? `date_trunc('milliseconds', ${column})` : column;
}
