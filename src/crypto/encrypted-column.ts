import { Column, ValueTransformer, getMetadataArgsStorage } from 'typeorm';
import { snakeCase } from 'typeorm/util/StringUtils';
import { activeKeyring } from './active-keyring';
import { NORMALIZERS, Normalizer, computeBlindIndex, computeBlindIndexes } from './blind-index';
import { open, seal } from './envelope';

export interface EncryptedOptions {
  /** Allow NULL (stored as NULL, not encrypted). Default false. */
  readonly nullable?: boolean;
  /** `string` (default) or `json` for any JSON-serialisable value. */
  readonly kind?: 'string' | 'json';
  /** Database column name, when not the snake_case of the property. */
  readonly name?: string;
  /**
   * Adds a sibling `<column>_index` column holding the value's blind index, kept up to date on
   * every insert and update; look rows up through it (`blindIndexOf`), optionally UNIQUE.
   */
  readonly blindIndex?: { readonly normalize?: keyof typeof NORMALIZERS | Normalizer; readonly unique?: boolean };
}

/** A developer used an encrypted column in a way that cannot work; thrown at once, never silent. */
export class EncryptedColumnMisuseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncryptedColumnMisuseError';
  }
}

/**
 * Encrypts on write and decrypts on read. The AAD domain is "table.column", resolved on first use
 * (the @Entity decorator runs after property decorators). A transformer never sees the row id, so
 * a value can be moved between rows of one column, not between columns (documented in the README).
 */
export class EncryptedColumnTransformer implements ValueTransformer {
  private resolvedDomain: string | undefined;

  constructor(
    private readonly entity: Function,
    readonly property: string,
    private readonly options: EncryptedOptions,
  ) {}

  get domain(): string {
    this.resolvedDomain ??= `${tableNameOf(this.entity)}.${this.options.name ?? snakeCase(this.property)}`;
    return this.resolvedDomain;
  }

  to(value: unknown): string | null {
    if (value === null || value === undefined) return null;
    if (calledFromWhereClause()) {
      throw new EncryptedColumnMisuseError(
        `${this.entity.name}.${this.property} is encrypted with a random IV, so it cannot be compared in a where clause. ` +
          (this.options.blindIndex
            ? `Look rows up through its blind index: { ${this.property}Index: blindIndexOf(${this.entity.name}, '${this.property}', value) }.`
            : 'Declare it with @Encrypted({ blindIndex: {} }) to make it searchable by equality.'),
      );
    }
    const plaintext = this.options.kind === 'json' ? JSON.stringify(value) : value;
    if (typeof plaintext !== 'string') {
      throw new EncryptedColumnMisuseError(
        `${this.entity.name}.${this.property} holds strings; use @Encrypted({ kind: 'json' }) for other values`,
      );
    }
    return seal(activeKeyring(), Buffer.from(plaintext, 'utf8'), this.domain);
  }

  from(value: string | null): unknown {
    if (value === null || value === undefined) return null;
    const plaintext = open(activeKeyring(), value, this.domain).toString('utf8');
    return this.options.kind === 'json' ? JSON.parse(plaintext) : plaintext;
  }
}

function tableNameOf(entity: Function): string {
  const table = getMetadataArgsStorage().tables.find((candidate) => candidate.target === entity);
  return table?.name ?? snakeCase(entity.name);
}

/**
 * TypeORM passes where-clause values through the same `to()` as values being saved; only the
 * call stack tells them apart: find options go through `buildWhere`, operators through
 * `FindOperator.transformValue`, update/delete/query-builder criteria through `getPredicates`.
 * Pinned to typeorm 1.1.1's names; tests cover each path, so an upgrade that renames them fails.
 */
function calledFromWhereClause(): boolean {
  const holder: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 12;
  Error.captureStackTrace(holder, calledFromWhereClause);
  Error.stackTraceLimit = limit;
  return /\.(buildWhere|getPredicates|getWhereCondition) |FindOperator\.transformValue /.test(holder.stack ?? '');
}

interface BlindIndexedProperty {
  readonly property: string;
  readonly indexProperty: string;
  readonly transformer: EncryptedColumnTransformer;
  readonly normalize: Normalizer;
}

const blindIndexes = new Map<Function, BlindIndexedProperty[]>();

/** The blind-indexed properties of an entity class (its own and inherited ones). */
export function blindIndexedProperties(entity: Function): readonly BlindIndexedProperty[] {
  const found: BlindIndexedProperty[] = [];
  for (
    let current: unknown = entity;
    typeof current === 'function' && current !== Function.prototype;
    current = Object.getPrototypeOf(current)
  ) {
    found.push(...(blindIndexes.get(current) ?? []));
  }
  return found;
}

/** The index a value is written with: `{ emailIndex: blindIndexOf(User, 'email', input) }`. */
export function blindIndexOf(entity: Function, property: string, value: string): string {
  const indexed = blindIndexedProperty(entity, property);
  return computeBlindIndex(activeKeyring(), indexed.transformer.domain, value, indexed.normalize);
}

/**
 * The indexes to look a value up by: `{ emailIndex: In(blindIndexesOf(User, 'email', input)) }`.
 * One, or two while a blind-index key rotation is under way (rows not yet rewritten keep the old).
 */
export function blindIndexesOf(entity: Function, property: string, value: string): string[] {
  const indexed = blindIndexedProperty(entity, property);
  return computeBlindIndexes(activeKeyring(), indexed.transformer.domain, value, indexed.normalize);
}

function blindIndexedProperty(entity: Function, property: string): BlindIndexedProperty {
  const indexed = blindIndexedProperties(entity).find((candidate) => candidate.property === property);
  if (!indexed)
    throw new EncryptedColumnMisuseError(`${entity.name}.${property} has no blind index; declare it with @Encrypted({ blindIndex: {} })`);
  return indexed;
}

/**
 * An encrypted TypeORM column (AES-256-GCM envelope, docs/security.md#enc-1), stored as text:
 *
 *     @Encrypted({ blindIndex: { normalize: 'email', unique: true } })
 *     email!: string;      // plus an automatic `emailIndex` column, "email_index"
 */
export function Encrypted(options: EncryptedOptions = {}): PropertyDecorator {
  return (target, propertyKey) => {
    const property = String(propertyKey);
    const entity = target.constructor;
    if (options.blindIndex && options.kind === 'json') {
      throw new EncryptedColumnMisuseError(`${entity.name}.${property}: a blind index needs a string column, not kind 'json'`);
    }
    const transformer = new EncryptedColumnTransformer(entity, property, options);
    Column({ type: 'text', nullable: options.nullable ?? false, name: options.name, transformer })(target, propertyKey);
    if (!options.blindIndex) return;

    const indexProperty = `${property}Index`;
    Column({
      type: 'text',
      nullable: options.nullable ?? false,
      unique: options.blindIndex.unique ?? false,
      name: options.name ? `${options.name}_index` : undefined,
    })(target, indexProperty);
    const normalize =
      typeof options.blindIndex.normalize === 'function'
        ? options.blindIndex.normalize
        : NORMALIZERS[options.blindIndex.normalize ?? 'exact'];
    blindIndexes.set(entity, [...(blindIndexes.get(entity) ?? []), { property, indexProperty, transformer, normalize }]);
  };
}
