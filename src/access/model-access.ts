import { AppError } from '../errors';
import { AccessClause, Action, ModelDecision, Scope, mfaRequired } from './decision';
import type { BUILT_IN_ROLES } from '../accounts/roles';

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

/** A row mask's withheld fields: those a role held back for want of MFA would show besides (see `withheldFrom`). */
const WITHHELD = new WeakMap<ReadonlySet<string>, FieldMask>();

/**
 * The fields of a row that a role the viewer holds, but that is held back (it requires MFA and the
 * session is aal1), would show besides those of its mask: they are refused with MFA_REQUIRED, not
 * FORBIDDEN. Undefined when there are none. A mask made anywhere else has none (fail closed: FORBIDDEN).
 */
export function withheldFrom(mask: FieldMask | undefined): FieldMask | undefined {
  return mask === undefined || mask === ALL_FIELDS ? undefined : WITHHELD.get(mask);
}

/** Attaches a mask decided elsewhere (a projected row carries the mask it was decided with). */
export function withFieldMask<T extends object>(row: T, mask: FieldMask): T {
  (row as Scoped)[ROW_ACCESS] = mask;
  return row;
}

/** A value SQL receives as a parameter: `bind` returns its placeholder ($1, $2 …). */
export type Bind = (value: unknown) => string;

/**
 * Which clauses a row falls in: one bit per clause (a viewer's clauses for one model are one per
 * grant in force, a handful), or the clause numbers joined when there are more than a number holds.
 */
export type ClauseSet = number | string;

/** Clauses a bit set can hold (bit 31 would make the number negative). */
const MAX_BITSET_CLAUSES = 30;

interface ResolvedClause {
  /** The owner must be the viewer. */
  readonly own: boolean;
  /** Equality conditions a row must meet (the named filter's, resolved); empty for none. */
  readonly conditions: readonly (readonly [string, string | number | boolean])[];
  readonly fields: ReadonlySet<string> | null;
}

/**
 * The rows a viewer may act on, as one structure: a list of clauses (one per grant in force; a
 * clause is "the owner is the viewer" and/or a named filter's equalities, with the fields it
 * shows), ORed. It renders to SQL (`toSql`) for queries and decides a row in memory (`matches`,
 * `matching`) for field masks and write checks, so the two can never disagree by construction:
 * both read the same resolved clauses. A clause that can match nothing (an unknown filter, OWN for
 * an anonymous viewer or an ownerless model) is dropped when the structure is built: fail closed.
 */
export class RowScope {
  private readonly masks = new Map<ClauseSet, FieldMask>();
  /** `showing`'s answers, by field: asked per row and per change (realtime decides a where in memory for each). */
  private readonly showingByField = new Map<string, RowScope | null>();
  /** The clauses a row is placed in: those in force, then the held-back ones (`matching`'s numbering). */
  private readonly placed: readonly ResolvedClause[];

  private constructor(
    private readonly spec: ModelAccessSpec,
    private readonly clauses: readonly ResolvedClause[],
    private readonly viewerId: string | null,
    /** Clauses of roles held back for want of MFA: they decide no row and no field, only which refusals say MFA_REQUIRED. */
    private readonly heldBack: readonly ResolvedClause[] = [],
  ) {
    this.placed = heldBack.length === 0 ? clauses : [...clauses, ...heldBack];
  }

  /**
   * The scope of these clauses (one per grant in force) for this viewer. `heldBack`: the clauses of
   * roles held back for want of MFA (ModelDecision.heldBack), which only mark what they would show.
   */
  static of(
    spec: ModelAccessSpec,
    clauses: readonly AccessClause[],
    viewerId: string | null,
    heldBack: readonly AccessClause[] = [],
  ): RowScope {
    return new RowScope(spec, resolveClauses(spec, clauses, viewerId), viewerId, resolveClauses(spec, heldBack, viewerId));
  }

  /** No row can match. */
  get empty(): boolean {
    return this.clauses.length === 0;
  }

  /** Some clause covers every row (no owner, no filter): the scope does not narrow the rows. */
  get everyRow(): boolean {
    return this.clauses.some((clause) => !clause.own && clause.conditions.length === 0);
  }

  /**
   * The scope as a SQL condition on the table aliased `alias` (`columnOf` names a field's column):
   * one parenthesised AND per clause, ORed; null when no row can match. Every value is bound.
   */
  toSql(alias: string, bind: Bind, columnOf: (field: string) => string): string | null {
    if (this.clauses.length === 0) return null;
    if (this.everyRow) return 'TRUE';
    const column = (field: string) => `"${alias}"."${columnOf(field)}"`;
    const parts = this.clauses.map((clause) => {
      const terms = clause.conditions.map(([field, value]) => `${column(field)} = ${bind(value)}`);
      if (clause.own) terms.push(`${column(this.spec.ownerField!)} = ${bind(this.viewerId)}`);
      return `(${terms.join(' AND ')})`;
    });
    return parts.length === 1 ? parts[0] : `(${parts.join(' OR ')})`;
  }

  /** Does the row (property values by field name) fall in the scope? The in-memory side of `toSql`. */
  matches(row: object): boolean {
    return this.clauses.some((clause) => this.inClause(row, clause));
  }

  /** The clauses the row falls in (0 or '' for none), the held-back ones numbered after those in force. */
  matching(row: object): ClauseSet {
    const placed = this.placed;
    if (placed.length > MAX_BITSET_CLAUSES) return placed.flatMap((clause, index) => (this.inClause(row, clause) ? [index] : [])).join(',');
    let set = 0;
    for (let index = 0; index < placed.length; index += 1) {
      if (this.inClause(row, placed[index])) set |= 1 << index;
    }
    return set;
  }

  /**
   * The fields a row in these clauses shows: the union of theirs, `id` whenever any (a readable row
   * can be named). When held-back clauses it falls in would show more, the mask records those
   * (`withheldFrom`), so their refusal is MFA_REQUIRED.
   */
  fieldsOf(set: ClauseSet): FieldMask {
    let mask = this.masks.get(set);
    if (mask === undefined) {
      const members = typeof set === 'string' ? new Set(set === '' ? [] : set.split(',').map(Number)) : undefined;
      const isMember = (index: number) => (members ? members.has(index) : ((set as number) & (1 << index)) !== 0);
      const shown = unionOfFields(this.clauses, 0, isMember);
      mask = shown === null ? NO_FIELDS : shown === ALL_FIELDS ? ALL_FIELDS : new Set([ID_FIELD, ...shown]);
      const wouldShow = mask === ALL_FIELDS ? null : unionOfFields(this.heldBack, this.clauses.length, isMember);
      if (wouldShow !== null && mask !== ALL_FIELDS) {
        const visible = mask;
        const withheld = wouldShow === ALL_FIELDS ? ALL_FIELDS : new Set([...wouldShow].filter((field) => !visible.has(field)));
        if (withheld === ALL_FIELDS || withheld.size > 0) {
          mask = new Set(visible);
          WITHHELD.set(mask, withheld);
        }
      }
      this.masks.set(set, mask);
    }
    return mask;
  }

  private inClause(row: object, clause: ResolvedClause): boolean {
    const values = row as Record<string, unknown>;
    if (clause.own && values[this.spec.ownerField!] !== this.viewerId) return false;
    for (const [field, value] of clause.conditions) if (values[field] !== value) return false;
    return true;
  }

  /** The rows in scope whose `field` the viewer may read (the clauses that show it); null when that is every row in scope. */
  showing(field: string): RowScope | null {
    if (field === ID_FIELD) return null;
    let scope = this.showingByField.get(field);
    if (scope === undefined) {
      const showing = this.clauses.filter((clause) => clause.fields === null || clause.fields.has(field));
      // Every clause shows it, or one that covers every row does: readable wherever the scope reaches.
      const everywhere = showing.length === this.clauses.length || showing.some((clause) => !clause.own && clause.conditions.length === 0);
      scope = everywhere ? null : new RowScope(this.spec, showing, this.viewerId);
      this.showingByField.set(field, scope);
    }
    return scope;
  }

  /** The fields a model's policy reads from a row to place it: the owner and the named filters' fields (held-back clauses' too). */
  get policyFields(): readonly string[] {
    const fields = new Set<string>();
    for (const clause of this.placed) {
      if (clause.own) fields.add(this.spec.ownerField!);
      for (const [field] of clause.conditions) fields.add(field);
    }
    return [...fields];
  }
}

/**
 * Row scoping and field masks for one model and one viewer's decision. Every query a model
 * resolver runs goes through the scope's clauses (`rows`, or `where` for TypeORM find options), so
 * OWN and named filters apply in SQL, never after loading; every row it returns carries its mask
 * (`expose`, or the data API's projection), so the field rules can decide.
 */
export class ModelScope {
  /** The decision's clauses as one structure (SQL and in memory). */
  readonly rows: RowScope;

  constructor(
    readonly spec: ModelAccessSpec,
    readonly decision: ModelDecision,
    private readonly viewerId: string | null,
  ) {
    this.rows = RowScope.of(spec, decision.allowed ? decision.clauses : [], viewerId, decision.allowed ? (decision.heldBack ?? []) : []);
  }

  /** One clause covers every row with every field: rows need no per-row decision. */
  get unrestricted(): boolean {
    return this.decision.unrestricted;
  }

  /** The same scope narrowed to some of its clauses (those `writableClauses` returned). */
  narrowedTo(clauses: readonly AccessClause[]): RowScope {
    return RowScope.of(this.spec, clauses, this.viewerId);
  }

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
    return withFieldMask(row, this.maskOf(row));
  }

  /** The fields of this row the viewer may read. */
  maskOf(row: object): FieldMask {
    return this.unrestricted ? ALL_FIELDS : this.rows.fieldsOf(this.rows.matching(row));
  }

  /**
   * The clauses that let the viewer write these input fields (CREATE or UPDATE decisions). Throws
   * FORBIDDEN naming the first field no clause allows: a client may never set more than its
   * grants name (mass assignment). MFA_REQUIRED instead when a held-back role's clause would allow
   * them all (on an aal2 session the write would pass this check).
   */
  writableClauses(inputFields: readonly string[]): AccessClause[] {
    const unknown = inputFields.find((field) => !this.spec.writableFields.includes(field));
    if (unknown) throw new AppError('BAD_USER_INPUT', `"${unknown}" cannot be set on ${this.spec.name}.`, { details: { field: unknown } });
    const covers = (clause: AccessClause) => inputFields.every((field) => clause.fields === null || clause.fields.has(field));
    const clauses = this.decision.clauses.filter(covers);
    if (clauses.length === 0) {
      const heldBack = resolveClauses(this.spec, (this.decision.heldBack ?? []).filter(covers), this.viewerId);
      if (heldBack.length > 0) throw mfaRequired();
      const field = inputFields.find((name) => !this.decision.clauses.some((clause) => clause.fields === null || clause.fields.has(name)));
      throw new AppError('FORBIDDEN', `You may not set "${field ?? inputFields[0]}" on ${this.spec.name}.`, {
        details: { field: field ?? inputFields[0] },
      });
    }
    return clauses;
  }

  /** Does the row (as it would be written) fall inside one of these clauses? The check after a write, like RLS WITH CHECK. */
  admits(row: object, clauses: readonly AccessClause[]): boolean {
    return this.narrowedTo(clauses).matches(row);
  }

  /** The TypeORM side of `RowScope.toSql`; null for a clause that can match nothing (a filter or owner the model lacks: fail closed). */
  private conditionOf(clause: AccessClause): Record<string, unknown> | null {
    const condition: Record<string, unknown> = {};
    if (clause.filter !== null) {
      if (!Object.hasOwn(this.spec.filters, clause.filter)) return null;
      Object.assign(condition, this.spec.filters[clause.filter]);
    }
    if (clause.own) {
      if (this.spec.ownerField === null || this.viewerId === null) return null;
      condition[this.spec.ownerField] = this.viewerId;
    }
    return condition;
  }
}

/** Clauses as RowScope uses them; a clause that can match nothing is dropped (fail closed). */
function resolveClauses(spec: ModelAccessSpec, clauses: readonly AccessClause[], viewerId: string | null): ResolvedClause[] {
  return clauses.flatMap((clause): ResolvedClause[] => {
    if (clause.own && (spec.ownerField === null || viewerId === null)) return [];
    let conditions: [string, string | number | boolean][] = [];
    if (clause.filter !== null) {
      // The model's own filter of that name; never an inherited property such as "constructor".
      if (!Object.hasOwn(spec.filters, clause.filter)) return [];
      conditions = Object.entries(spec.filters[clause.filter]);
    }
    return [{ own: clause.own, conditions, fields: clause.fields }];
  });
}

/** The fields the member clauses show together (clause `index` is member `offset + index`): all, some, or null for no member. */
function unionOfFields(
  clauses: readonly { readonly fields: ReadonlySet<string> | null }[],
  offset: number,
  isMember: (index: number) => boolean,
): typeof ALL_FIELDS | ReadonlySet<string> | null {
  let fields: Set<string> | null = null;
  for (let index = 0; index < clauses.length; index += 1) {
    if (!isMember(offset + index)) continue;
    const clauseFields = clauses[index].fields;
    if (clauseFields === null) return ALL_FIELDS;
    fields ??= new Set();
    for (const field of clauseFields) fields.add(field);
  }
  return fields;
}
