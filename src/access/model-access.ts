import { AppError } from '../errors';
import type { AccessClause, Action, BUILT_IN_ROLES, ModelDecision, Scope } from './policy';

/** A named row filter: equality on model columns, written in code, never sent by a client. */
export type RowFilter = Readonly<Record<string, string | number | boolean>>;

/** A grant a model ships with; written into `permission_grants` the first time the model is seen. */
export interface DefaultGrant {
  readonly role: (typeof BUILT_IN_ROLES)[number];
  readonly action: Action;
  readonly scope: Scope;
  readonly fields?: readonly string[];
  readonly filter?: string;
}

/**
 * What the permission layer needs to know about a model: its GraphQL name, who owns a row,
 * which fields a grant may name, its row filters and its default grants. The data API builds
 * one per `defineModel`; tests declare their own.
 */
export interface ModelAccessSpec {
  /** The GraphQL type name, e.g. "Post"; grants name the model by it. */
  readonly name: string;
  /** The property holding the owner's user id; null when rows have no owner (OWN grants are refused). */
  readonly ownerField: string | null;
  /** GraphQL fields a READ grant can name. */
  readonly readableFields: readonly string[];
  /** Input fields a CREATE or UPDATE grant can name; never the owner, ids or timestamps. */
  readonly writableFields: readonly string[];
  readonly filters: Readonly<Record<string, RowFilter>>;
  readonly defaults: readonly DefaultGrant[];
}

/** Every field of the row may be read. */
export const ALL_FIELDS = 'all' as const;
export type FieldMask = typeof ALL_FIELDS | ReadonlySet<string>;
const NO_FIELDS: ReadonlySet<string> = new Set();
/** Every model's key; readable in every row the viewer may read, so it is the one non-null field of a model type. */
export const ID_FIELD = 'id';

/** Where a row's readable fields travel with it, from the loader that scoped it to the field rules. */
const ROW_ACCESS = Symbol('bastion.rowAccess');
type Scoped = { [ROW_ACCESS]?: FieldMask };

/** The readable fields of a row, as decided when it was loaded; undefined for a row no scoped loader produced. */
export function fieldMaskOf(row: unknown): FieldMask | undefined {
  return row !== null && typeof row === 'object' ? (row as Scoped)[ROW_ACCESS] : undefined;
}

/**
 * Row scoping and field masks for one model and one viewer's decision. Every query a model
 * resolver runs goes through `where` (so OWN and named filters apply in SQL, never after
 * loading); every row it returns goes through `expose` (so the field rules can read the mask).
 */
export class ModelScope {
  constructor(
    readonly spec: ModelAccessSpec,
    readonly decision: ModelDecision,
    private readonly viewerId: string | null,
  ) {}

  /**
   * TypeORM `where` for the rows the viewer may act on: one object per clause (TypeORM ORs an
   * array), each combined with `base`. null when no row can match: callers answer NOT_FOUND or an
   * empty page, as for rows that do not exist. Never an empty array, which TypeORM reads as no
   * condition at all (every row).
   */
  where<T extends object>(base: T = {} as T, clauses: readonly AccessClause[] = this.decision.clauses): T[] | null {
    if (!this.decision.allowed) return null;
    if (clauses.some((clause) => !clause.own && clause.filter === null)) return [{ ...base }];
    const conditions = clauses.flatMap((clause) => {
      const condition = this.conditionOf(clause);
      return condition ? [{ ...base, ...condition }] : [];
    });
    return conditions.length > 0 ? conditions : null;
  }

  /** Attaches the readable fields to the row (once per row; constant when the decision covers every row and field). */
  expose<T extends object>(row: T): T {
    (row as Scoped)[ROW_ACCESS] = this.decision.unrestricted ? ALL_FIELDS : this.maskOf(row);
    return row;
  }

  /**
   * The clauses that let the viewer write these input fields (CREATE or UPDATE decisions). Throws
   * FORBIDDEN naming the first field no clause allows: a client may never set more than its
   * grants name (mass assignment, SECURITY.md 15.3.3).
   */
  writableClauses(inputFields: readonly string[]): AccessClause[] {
    const unknown = inputFields.find((field) => !this.spec.writableFields.includes(field));
    if (unknown) throw new AppError('BAD_USER_INPUT', `"${unknown}" cannot be set on ${this.spec.name}.`, { details: { field: unknown } });
    const clauses = this.decision.clauses.filter((clause) => inputFields.every((field) => clause.fields === null || clause.fields.has(field)));
    if (clauses.length === 0) {
      const field = inputFields.find((name) => !this.decision.clauses.some((clause) => clause.fields === null || clause.fields.has(name)));
      throw new AppError('FORBIDDEN', `You may not set "${field ?? inputFields[0]}" on ${this.spec.name}.`, { details: { field: field ?? inputFields[0] } });
    }
    return clauses;
  }

  /** Does the row (as it would be written) fall inside one of these clauses? The check after a write, like RLS WITH CHECK. */
  admits(row: object, clauses: readonly AccessClause[]): boolean {
    return clauses.some((clause) => this.matches(row, clause));
  }

  /** The union of the fields of the clauses the row falls in; `id` whenever it falls in any (a readable row can be named). */
  private maskOf(row: object): FieldMask {
    let fields: Set<string> | undefined;
    for (const clause of this.decision.clauses) {
      if (!this.matches(row, clause)) continue;
      if (clause.fields === null) return ALL_FIELDS;
      fields ??= new Set([ID_FIELD]);
      for (const field of clause.fields) fields.add(field);
    }
    return fields ?? NO_FIELDS;
  }

  private matches(row: object, clause: AccessClause): boolean {
    const values = row as Record<string, unknown>;
    if (clause.own && (this.spec.ownerField === null || values[this.spec.ownerField] !== this.viewerId)) return false;
    if (clause.filter === null) return true;
    const filter = this.filterNamed(clause.filter);
    return filter !== undefined && Object.entries(filter).every(([field, value]) => values[field] === value);
  }

  /** The model's own filter of that name; never an inherited property such as "constructor". */
  private filterNamed(name: string): RowFilter | undefined {
    return Object.hasOwn(this.spec.filters, name) ? this.spec.filters[name] : undefined;
  }

  /** The SQL side of `matches`; null for a clause that can match nothing (a filter or owner the model lacks: fail closed). */
  private conditionOf(clause: AccessClause): Record<string, unknown> | null {
    const condition: Record<string, unknown> = {};
    if (clause.filter !== null) {
      const filter = this.filterNamed(clause.filter);
      if (!filter) return null;
      Object.assign(condition, filter);
    }
    if (clause.own) {
      if (this.spec.ownerField === null || this.viewerId === null) return null;
      condition[this.spec.ownerField] = this.viewerId;
    }
    return condition;
  }
}
