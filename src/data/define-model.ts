import { GraphQLFloat, GraphQLID, GraphQLInt } from 'graphql';
import pluralize from 'pluralize';
import { getMetadataStorage } from 'type-graphql';
import { JoinColumn, ManyToOne, ValueTransformer, getMetadataArgsStorage } from 'typeorm';
import { snakeCase } from 'typeorm/util/StringUtils';
import type { DefaultGrant, ModelAccessSpec, RowFilter } from '../access/model-access';
import { User } from '../accounts/user.entity';
import type { ColumnKind } from '../db/sql-parameters';
import { EncryptedColumnTransformer, blindIndexedProperties } from '../crypto/encrypted-column';

/** The kinds of stored field a model may have. */
export type FieldKind = ColumnKind;

/** One stored field of a model, as the data API sees it. */
export interface ModelField {
  readonly name: string;
  readonly column: string;
  readonly kind: FieldKind;
  /** The column allows NULL. */
  readonly nullable: boolean;
  /** A date-time column stored at millisecond precision (timestamptz(3)): compared and sorted as stored, so indexes apply. */
  readonly millisecondPrecision: boolean;
  readonly encrypted: boolean;
  /** Encrypted with a blind index: equality lookups only, through the index column. */
  readonly blindIndexColumn: string | null;
  readonly description: string;
  readonly filterable: boolean;
  readonly sortable: boolean;
  readonly writable: boolean;
  /** Must be given on create (NOT NULL and no default). */
  readonly requiredOnCreate: boolean;
  /** The column's TypeORM transformer (an encrypted column's decrypts): reads apply it as TypeORM does. */
  readonly transformer?: ValueTransformer | ValueTransformer[];
}

/** A many-to-one: `by` on this model holds the key of the target row (`to`, default its id). */
export interface OneRelationOptions {
  readonly kind: 'one';
  readonly model: () => Function;
  readonly by: string;
  readonly to?: string;
  readonly description: string;
}

/** A one-to-many: rows of the target model whose `by` holds this row's id. */
export interface ManyRelationOptions {
  readonly kind: 'many';
  readonly model: () => Function;
  readonly by: string;
  readonly description: string;
  /** Also expose how many related rows the viewer may read, as this field. */
  readonly count?: { readonly name: string; readonly description: string };
}

export type RelationOptions = OneRelationOptions | ManyRelationOptions;

/** A file field: one file (`Profile.avatar: File`) or several (`Post.attachments: [File!]`), served by the files feature. */
export interface FileFieldOptions {
  readonly description: string;
  /** Several files in this field, up to `maxFiles` (default 10); one otherwise (a new upload replaces it). */
  readonly multiple?: boolean;
  readonly maxFiles?: number;
  /** The largest file, in bytes. */
  readonly maxBytes: number;
  /** The content types allowed, as read from the bytes (`image/jpeg`, `application/pdf`…). */
  readonly types: readonly string[];
  /** Keep images' metadata (EXIF, GPS…); stripped by default. */
  readonly keepMetadata?: boolean;
  /** Smaller renditions made of images when they arrive (`THUMB_256`, `MEDIUM_1024`). */
  readonly variants?: readonly string[];
}

export interface DefineModelOptions<T> {
  /** The property holding the owner's user id (a uuid column); omit for rows nobody owns. */
  readonly owner?: keyof T & string;
  /**
   * When the owner deletes their account: delete their rows (default), or keep them with the
   * owner set to null (the owner column must then be nullable). Enforced by a foreign key.
   */
  readonly onOwnerDeleted?: 'delete' | 'anonymize';
  /** The policy the model ships with, written into permission_grants the first time it is seen. */
  readonly defaults: readonly DefaultGrant[];
  /** Named row filters grants can narrow a scope with: equality on columns, in code only. */
  readonly filters?: Readonly<Record<string, Partial<Record<keyof T & string, string | number | boolean>>>>;
  /** Fields clients may filter by in `where` (encrypted ones: `eq` through their blind index). */
  readonly filterable?: readonly (keyof T & string)[];
  /** Fields clients may sort by (NOT NULL, not encrypted); the id always breaks ties. */
  readonly sortable?: readonly (keyof T & string)[];
  /** Fields clients may set on create and update. Never the id, the owner or timestamps. */
  readonly writable: readonly (keyof T & string)[];
  readonly relations?: Readonly<Record<string, RelationOptions>>;
  /** File fields (README "Files"); the table needs the files trigger in a migration, which the server checks at start. */
  readonly files?: Readonly<Record<string, FileFieldOptions>>;
  /** The list field's name; default the lowerCamel English plural of the type name. */
  readonly plural?: string;
  /**
   * Live updates: a `<singular>Changed(where)` subscription. The table needs the change trigger
   * in a migration (README "Realtime"); the server refuses to start without it.
   */
  readonly subscriptions?: boolean;
}

/** A registered model, before the schema is built (other models it names may not be loaded yet). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a list holds handles of different models
export interface ModelHandle<T = any> {
  readonly entity: new () => T;
  readonly options: DefineModelOptions<T>;
}

/**
 * Declares a model: an @Entity + @ObjectType class becomes a permission-enforced GraphQL CRUD API
 * (src/data). Adds the owner's foreign key to users (CASCADE, or SET NULL for 'anonymize') and
 * one for each many-to-one relation by id, so `migration:generate` writes them.
 */
export function defineModel<T>(entity: new () => T, options: DefineModelOptions<T>): ModelHandle<T> {
  const prototype = entity.prototype as object;
  if (options.owner) {
    const property = `${options.owner}Account`;
    ManyToOne(() => User, {
      onDelete: options.onOwnerDeleted === 'anonymize' ? 'SET NULL' : 'CASCADE',
      nullable: options.onOwnerDeleted === 'anonymize',
    })(prototype, property);
    JoinColumn({ name: columnNameOf(entity, options.owner) })(prototype, property);
  }
  for (const relation of Object.values(options.relations ?? {})) {
    if (relation.kind !== 'one' || (relation.to ?? 'id') !== 'id') continue;
    const property = `${relation.by}Row`;
    ManyToOne(relation.model as () => new () => unknown, { onDelete: 'CASCADE' })(prototype, property);
    JoinColumn({ name: columnNameOf(entity, relation.by) })(prototype, property);
  }
  return { entity, options };
}

function columnNameOf(entity: Function, property: string): string {
  const column = getMetadataArgsStorage().columns.find((candidate) => candidate.target === entity && candidate.propertyName === property);
  return column?.options.name ?? snakeCase(property);
}

/** A relation, resolved. */
export interface ModelRelation {
  readonly name: string;
  readonly kind: 'one' | 'many';
  readonly target: () => ModelDefinition;
  /** The property on the row that holds the key (one: this model's; many: the target's). */
  readonly by: string;
  /** one: the target's property the key matches. */
  readonly to: string;
  readonly description: string;
  readonly count: { readonly name: string; readonly description: string } | null;
}

/** A file field, resolved. */
export interface ModelFileField extends FileFieldOptions {
  readonly name: string;
  readonly multiple: boolean;
  readonly maxFiles: number;
  readonly keepMetadata: boolean;
  readonly variants: readonly string[];
}

/** Everything the data API generates from, checked once when the schema is built. */
export interface ModelDefinition {
  readonly entity: new () => object;
  readonly name: string;
  readonly description: string;
  readonly table: string;
  readonly singular: string;
  readonly plural: string;
  readonly ownerField: ModelField | null;
  readonly fields: readonly ModelField[];
  readonly relations: readonly ModelRelation[];
  readonly files: readonly ModelFileField[];
  readonly access: ModelAccessSpec;
  /** Serves `<singular>Changed`; its change trigger keeps `changeColumns` of a row's state before each change. */
  readonly subscriptions: boolean;
  /** The columns a change must remember of the row before it: the owner, the named filters' and the filterable fields' (and blind indexes). */
  readonly changeColumns: readonly string[];
}

export class ModelDefinitionError extends Error {
  constructor(model: string, problem: string) {
    super(`Model ${model}: ${problem}`);
    this.name = 'ModelDefinitionError';
  }
}

const SYSTEM_FIELDS = new Set(['id', 'createdAt', 'updatedAt']);
const INTEGER_COLUMNS = new Set(['int', 'integer', 'int4', 'smallint', 'int2']);
/** Column types a Date field may have: instants (a `date` or `time` column is not one). */
const INSTANT_COLUMNS = new Set(['', 'timestamptz', 'timestamp', 'timestamp with time zone', 'timestamp without time zone']);

/** Reads a model's type-graphql and TypeORM metadata and checks the options against it. */
export function resolveModel(handle: ModelHandle, byEntity: (entity: Function) => ModelDefinition): ModelDefinition {
  const { entity, options } = handle;
  const objectType = getMetadataStorage().objectTypes.find((candidate) => candidate.target === entity);
  const name = objectType?.name ?? entity.name;
  const fail = (problem: string): never => {
    throw new ModelDefinitionError(name, problem);
  };
  if (!objectType) fail('the class needs @ObjectType({ description }) as well as @Entity');
  const table =
    getMetadataArgsStorage().tables.find((candidate) => candidate.target === entity)?.name ?? fail("the class needs @Entity('table_name')");
  const columns = getMetadataArgsStorage().columns.filter((column) => column.target === entity);
  const graphqlFields = getMetadataStorage().fields.filter((field) => field.target === entity);
  const blindIndexed = blindIndexedProperties(entity);
  const has = (list: readonly string[] | undefined, field: string) => (list ?? []).includes(field);

  const fields = graphqlFields.flatMap((field): ModelField[] => {
    const column = columns.find((candidate) => candidate.propertyName === field.name);
    if (!column) return []; // a computed field of the class: exposed as declared, not stored
    const encrypted = column.options.transformer instanceof EncryptedColumnTransformer;
    const index = blindIndexed.find((candidate) => candidate.property === field.name);
    const generated = column.mode === 'createDate' || column.mode === 'updateDate' || field.name === 'id';
    const nullableColumn = column.options.nullable === true;
    const hasDefault = column.options.default !== undefined || generated;
    if (field.name !== 'id' && !field.typeOptions.nullable)
      fail(`${field.name} must be @Field({ nullable: true }): a field a role may not read comes back null with an error at its path`);
    const kind = kindOf(field.getType(), name, field.name);
    const columnType = String(column.options.type ?? '').toLowerCase();
    if (kind === 'id' && columnType !== 'uuid')
      fail(`${field.name} is typed ID, so its column must be a uuid (@PrimaryGeneratedColumn('uuid') or @Column({ type: 'uuid' }))`);
    if (kind === 'float' && INTEGER_COLUMNS.has(columnType)) fail(`${field.name} is an integer column: declare it @Field(() => Int)`);
    if (kind === 'datetime' && !INSTANT_COLUMNS.has(columnType))
      fail(`${field.name} is a Date field, so its column must be a timestamptz (got ${columnType})`);
    if (field.schemaName !== field.name)
      fail(`${field.name} is renamed in GraphQL (${field.schemaName}): the data API serves fields under their property names`);
    if (columnType === 'bigint' || columnType === 'int8')
      fail(`${field.name}: bigint columns are not supported (JavaScript numbers lose precision); use integer or numeric text`);
    return [
      {
        name: field.name,
        column: column.options.name ?? snakeCase(field.name),
        kind,
        nullable: nullableColumn,
        millisecondPrecision: column.options.precision !== undefined && column.options.precision !== null && column.options.precision <= 3,
        encrypted,
        blindIndexColumn: index
          ? (columns.find((candidate) => candidate.propertyName === index.indexProperty)?.options.name ?? snakeCase(index.indexProperty))
          : null,
        description: field.description ?? fail(`${field.name} needs a description`),
        filterable: has(options.filterable, field.name),
        sortable: has(options.sortable, field.name),
        writable: has(options.writable, field.name),
        requiredOnCreate: has(options.writable, field.name) && !nullableColumn && !hasDefault,
        transformer: column.options.transformer,
      },
    ];
  });

  const field = (property: string) => fields.find((candidate) => candidate.name === property);
  const idField = field('id');
  if (!idField || idField.kind !== 'id') fail("needs `@Field(() => ID) @PrimaryGeneratedColumn('uuid') id`");
  const ownerField = options.owner
    ? (field(options.owner) ?? fail(`owner "${options.owner}" is not a @Field and @Column of the class`))
    : null;
  if (ownerField && (ownerField.kind !== 'id' || ownerField.encrypted))
    fail(`owner "${ownerField.name}" must be a plain uuid column typed ID`);
  if (ownerField && options.onOwnerDeleted === 'anonymize' && !ownerField.nullable)
    fail(`owner "${ownerField.name}" must be a nullable column for onOwnerDeleted: 'anonymize'`);
  for (const property of options.writable) {
    const target = field(property) ?? fail(`writable "${property}" is not a @Field and @Column of the class`);
    if (SYSTEM_FIELDS.has(property) || property === options.owner)
      fail(`"${target.name}" cannot be writable: ids, the owner and timestamps are never set by clients`);
  }
  for (const property of options.filterable ?? []) {
    const target = field(property) ?? fail(`filterable "${property}" is not a @Field and @Column of the class`);
    if (target.encrypted && !target.blindIndexColumn) fail(`"${property}" is encrypted without a blind index, so it cannot be filtered`);
  }
  for (const property of options.sortable ?? []) {
    const target = field(property) ?? fail(`sortable "${property}" is not a @Field and @Column of the class`);
    if (target.encrypted || target.nullable) fail(`"${property}" cannot be sortable: sort fields must be NOT NULL and not encrypted`);
    if (target.kind === 'datetime' && !target.millisecondPrecision)
      fail(
        `"${property}" is a sortable date-time: declare its column with precision: 3 ` +
          `(clients see milliseconds; sorting on the stored value keeps its index usable)`,
      );
  }
  const filters: Record<string, RowFilter> = {};
  for (const [filterName, condition] of Object.entries(options.filters ?? {})) {
    for (const property of Object.keys(condition)) {
      const target = field(property) ?? fail(`filter "${filterName}" names "${property}", which is not a @Field and @Column`);
      if (target.encrypted) fail(`filter "${filterName}" cannot compare the encrypted "${property}"`);
    }
    filters[filterName] = condition as RowFilter;
  }

  const relations = Object.entries(options.relations ?? {}).map(([relationName, relation]): ModelRelation => {
    if (field(relationName)) fail(`relation "${relationName}" has the name of a field`);
    if (relation.kind === 'one' && (!field(relation.by) || field(relation.by)!.encrypted))
      fail(`relation "${relationName}": "${relation.by}" must be a plain (not encrypted) field of the class`);
    return {
      name: relationName,
      kind: relation.kind,
      target: () => byEntity(relation.model()),
      by: relation.by,
      to: relation.kind === 'one' ? (relation.to ?? 'id') : 'id',
      description: relation.description,
      count: relation.kind === 'many' ? (relation.count ?? null) : null,
    };
  });

  const files = Object.entries(options.files ?? {}).map(([fileName, file]): ModelFileField => {
    if (field(fileName) || relations.some((relation) => relation.name === fileName || relation.count?.name === fileName))
      fail(`file field "${fileName}" has the name of a field or relation`);
    if (!Number.isSafeInteger(file.maxBytes) || file.maxBytes < 1 || file.maxBytes > 2 ** 31 - 1)
      fail(`file field "${fileName}": maxBytes must be a whole number of bytes from 1 to 2147483647 (2 GiB)`);
    if (file.types.length === 0) fail(`file field "${fileName}": name at least one content type`);
    const maxFiles = file.multiple ? (file.maxFiles ?? 10) : 1;
    if (!Number.isSafeInteger(maxFiles) || maxFiles < 1) fail(`file field "${fileName}": maxFiles must be a positive integer`);
    return {
      ...file,
      name: fileName,
      multiple: file.multiple === true,
      maxFiles,
      keepMetadata: file.keepMetadata === true,
      variants: [...(file.variants ?? [])],
    };
  });

  const singular = name[0].toLowerCase() + name.slice(1);
  const remembered = new Set<string>();
  for (const candidate of fields) {
    const placesRow =
      candidate === ownerField || candidate.filterable || Object.values(filters).some((filter) => Object.hasOwn(filter, candidate.name));
    if (!placesRow) continue;
    remembered.add(candidate.encrypted ? candidate.blindIndexColumn! : candidate.column);
  }
  const readableFields = [
    ...fields.map((candidate) => candidate.name),
    ...relations.flatMap((relation) => [relation.name, ...(relation.count ? [relation.count.name] : [])]),
    ...files.map((file) => file.name),
  ];
  return {
    entity: entity,
    name,
    description: objectType!.description ?? fail('@ObjectType needs a description'),
    table,
    singular,
    plural: options.plural ?? pluralOf(singular),
    ownerField,
    fields,
    relations,
    files,
    subscriptions: options.subscriptions === true,
    changeColumns: [...remembered],
    access: {
      name,
      ownerField: ownerField?.name ?? null,
      readableFields,
      // A file field is written by its uploads: attaching or removing one needs update on the row and write on the field.
      writableFields: [...options.writable, ...files.map((file) => file.name)],
      filters,
      defaults: options.defaults,
    },
  };
}

function kindOf(type: unknown, model: string, field: string): FieldKind {
  if (type === GraphQLID) return 'id';
  if (type === String) return 'string';
  if (type === GraphQLInt) return 'int';
  if (type === Number || type === GraphQLFloat) return 'float';
  if (type === Boolean) return 'boolean';
  if (type === Date) return 'datetime';
  throw new ModelDefinitionError(model, `${field} has a type the data API does not support yet (ID, String, Int, Float, Boolean, Date)`);
}

/**
 * English plural of a lowerCamel name, from pluralize's rules and irregular words: post → posts,
 * category → categories, person → people, blogEntry → blogEntries (only the last word changes).
 */
export function pluralOf(singular: string): string {
  const [, head, lastWord] = /^(.*?)([A-Z]?[a-z0-9]*)$/.exec(singular)!;
  const plural = pluralize.plural(lastWord.toLowerCase());
  return head + (lastWord === lastWord.toLowerCase() ? plural : plural[0].toUpperCase() + plural.slice(1));
}
