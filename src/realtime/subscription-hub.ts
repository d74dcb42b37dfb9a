import type { AccessView } from '../access/access-view';
import { ALL_FIELDS, FieldMask, RowScope, withheldFrom } from '../access/model-access';
import type { Context } from '../context';
import type { ModelDefinition } from '../data/define-model';
import type { WhereInput } from '../data/filters';
import type { ChangeKind, LiveChange, LiveChanges } from '../data/live-changes';
import type { RowValues } from '../data/model-reader';
import { Wanted, wants } from '../data/selection';
import { checkWhere, matchesCheckedWhere } from '../data/row-match';
import { AppError } from '../errors';
import { accessDenied } from '../shield/shield';
import { CLOSE, LiveConnection } from './live-connection';

/** A row's change as this instance heard it: the row before (only the columns that place it; null when it did not exist) and now (null when gone). */
export interface HeardChange {
  readonly id: string;
  readonly before: RowValues | null;
  readonly after: RowValues | null;
}

/**
 * Changes waiting for graphql-ws to execute and send; past this the socket is closed (1013). One
 * batch holds at most this many (ChangeListener's cap), so a large batch alone never closes a
 * subscriber; a client that does not read is closed earlier, by the socket's buffer limit.
 */
const MAX_PENDING_PER_SUBSCRIPTION = 10_000;

/** One subscription: its connection, model and where, and the changes waiting for graphql-ws to take them. */
class Subscription implements AsyncIterableIterator<LiveChange> {
  private readonly pending: LiveChange[] = [];
  private waiting: ((result: IteratorResult<LiveChange>) => void) | null = null;
  private done = false;

  constructor(
    readonly connection: LiveConnection,
    readonly model: ModelDefinition,
    readonly where: WhereInput | null | undefined,
    readonly followsRelation: boolean,
    private readonly onEnd: (subscription: Subscription) => void,
  ) {}

  push(change: LiveChange): void {
    if (this.done) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve({ value: change, done: false });
      return;
    }
    if (this.pending.length >= MAX_PENDING_PER_SUBSCRIPTION) {
      this.connection.end(CLOSE.slowConsumer);
      return;
    }
    this.pending.push(change);
  }

  next(): Promise<IteratorResult<LiveChange>> {
    if (this.pending.length > 0) return Promise.resolve({ value: this.pending.shift()!, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<LiveChange>> {
    if (!this.done) {
      this.done = true;
      this.pending.length = 0;
      this.waiting?.({ value: undefined, done: true });
      this.waiting = null;
      this.onEnd(this);
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(): Promise<IteratorResult<LiveChange>> {
    return this.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * The subscriptions of this instance and the decision, per subscriber, of what each change means
 * to it: the same row scope and named filters the list query compiles to SQL (RowScope.matches),
 * the same `where` (rowMatchesWhere, conditions only on fields it may read), decided in memory on
 * the row read once per change, with the subscriber's rights at that moment. A row it may not read
 * before nor after the change is never mentioned to it: no event, no id.
 */
export class SubscriptionHub implements LiveChanges {
  private readonly byModel = new Map<string, Set<Subscription>>();
  private readonly connectionsOf = new Map<LiveConnection, Set<Subscription>>();
  /** Numbers the batches, so a delivery's `sharedAs` never matches one of another batch. */
  private batches = 0;

  constructor(private readonly maxSubscriptionsPerConnection: number) {}

  /** Models someone on this instance follows: changes of others are not even read. */
  isFollowed(model: string): boolean {
    return (this.byModel.get(model)?.size ?? 0) > 0;
  }

  follow(model: ModelDefinition, context: Context, where: WhereInput | null | undefined, node: Wanted): AsyncIterableIterator<LiveChange> {
    const connection = connectionOf(context);
    const allowed = context.access.check(model.name, 'read');
    if (allowed instanceof AppError) throw allowed;
    if (!allowed) throw accessDenied(context, `Subscription.${model.singular}Changed`);
    // The where's limits (nesting, condition count, NUL) are checked now: a bad one is refused at subscribe, not at the first change.
    checkWhere(model, where);
    if (connection.subscriptions >= this.maxSubscriptionsPerConnection)
      throw new AppError('RATE_LIMITED', `A socket may run at most ${this.maxSubscriptionsPerConnection} subscriptions at once.`);
    connection.subscriptions += 1;
    // A selection that follows a relation reads rows in the viewer's own scope: its answers are the account's own.
    const followsRelation = model.relations.some(
      (relation) => wants(node, relation.name) || (relation.count !== null && wants(node, relation.count.name)),
    );
    const subscription = new Subscription(connection, model, where, followsRelation, (ended) => this.forget(ended));
    let ofModel = this.byModel.get(model.name);
    if (!ofModel) this.byModel.set(model.name, (ofModel = new Set()));
    ofModel.add(subscription);
    let ofConnection = this.connectionsOf.get(connection);
    if (!ofConnection) this.connectionsOf.set(connection, (ofConnection = new Set()));
    ofConnection.add(subscription);
    return subscription;
  }

  /** Every open connection with a subscription (for re-checks when a session or the firewall changes). */
  connections(): LiveConnection[] {
    return [...this.connectionsOf.keys()];
  }

  /** Changes may have been missed (the listener was away): every following connection is closed (1012), its app refetches. */
  changesMissed(): void {
    for (const connection of this.connections()) connection.end(CLOSE.changesMissed);
  }

  /** A model's rows changed in bulk (too many to deliver one by one): the connections following it are closed (1012) and refetch. */
  changedInBulk(model: string): void {
    for (const subscription of [...(this.byModel.get(model) ?? [])]) subscription.connection.end(CLOSE.changesMissed);
  }

  /** Ends a closed connection's subscriptions. */
  closed(connection: LiveConnection): void {
    for (const subscription of [...(this.connectionsOf.get(connection) ?? [])]) void subscription.return();
  }

  /**
   * Delivers a batch of one model's changes, in commit order: each connection following the model
   * is brought up to date once, then each of its subscriptions is told what each change means to it.
   */
  async deliver(model: ModelDefinition, changes: readonly HeardChange[]): Promise<void> {
    const subscriptions = [...(this.byModel.get(model.name) ?? [])];
    const connections = new Set(subscriptions.map((subscription) => subscription.connection));
    const open = new Set<LiveConnection>();
    await Promise.all(
      [...connections].map(async (connection) => {
        if (await connection.refresh()) open.add(connection);
      }),
    );
    this.batches += 1;
    for (const subscription of subscriptions) {
      if (!open.has(subscription.connection)) continue;
      const rights = subscription.connection.rights;
      const access = rights.access as AccessView;
      const scope = access.scope(model.access, 'read');
      const answeredAs = `${viewerKey(access)}|${subscription.followsRelation ? access.viewer.userId : ''}`;
      for (const change of changes) {
        const kind = kindFor(model, scope.rows, subscription.where, change);
        if (!kind) continue;
        const row = kind === 'DELETED' ? null : change.after;
        const shows = row === null ? '' : maskKey(scope.maskOf(row));
        const sharedAs = `${this.batches}|${change.id}|${kind}|${shows}|${answeredAs}`;
        subscription.push({ kind, id: change.id, row, sharedAs, context: rights });
      }
    }
  }

  private forget(subscription: Subscription): void {
    this.byModel.get(subscription.model.name)?.delete(subscription);
    const ofConnection = this.connectionsOf.get(subscription.connection);
    ofConnection?.delete(subscription);
    if (ofConnection?.size === 0) this.connectionsOf.delete(subscription.connection);
    subscription.connection.subscriptions -= 1;
  }
}

const POLICY_IDS = new WeakMap<object, number>();
let policies = 0;

/** What a row's answer depends on besides its values: the fields it shows, and those a role held back for want of MFA would. */
function maskKey(mask: FieldMask): string {
  if (mask === ALL_FIELDS) return 'all';
  const withheld = withheldFrom(mask);
  const fields = (set: ReadonlySet<string>) => [...set].sort().join(',');
  return `${fields(mask)}/${withheld === undefined ? '' : withheld === ALL_FIELDS ? 'all' : fields(withheld)}`;
}

/** Whose rules decide the rest (relations' grants, the root field's rule, UNAUTHENTICATED or FORBIDDEN): the policy and the roles in force. */
function viewerKey(access: AccessView): string {
  let policy = POLICY_IDS.get(access.policy);
  if (policy === undefined) POLICY_IDS.set(access.policy, (policy = policies += 1));
  const roles = (set: ReadonlySet<string>) => [...set].sort().join(',');
  return `${policy}|${access.viewer.userId === null ? 'anonymous' : 'signed-in'}|${roles(access.rolesInForce)}|${roles(access.rolesHeldBack)}`;
}

/** What a change means to one subscriber: did it see the row before, does it see it now. */
function kindFor(model: ModelDefinition, scope: RowScope, where: WhereInput | null | undefined, change: HeardChange): ChangeKind | null {
  const sawBefore = change.before !== null && sees(model, scope, where, change.before);
  const seesNow = change.after !== null && sees(model, scope, where, change.after);
  if (seesNow) return sawBefore ? 'UPDATED' : 'CREATED';
  return sawBefore ? 'DELETED' : null;
}

function sees(model: ModelDefinition, scope: RowScope, where: WhereInput | null | undefined, row: RowValues): boolean {
  if (!scope.matches(row)) return false;
  if (!where) return true;
  // As the list query: a condition holds only where the viewer may read its field.
  return matchesCheckedWhere(model, where, row, (field) => scope.showing(field)?.matches(row) ?? true);
}

/** Subscriptions run on a socket's context only (the realtime feature builds it). */
function connectionOf(context: Context): LiveConnection {
  const connection = (context as Context & { readonly connection?: LiveConnection }).connection;
  if (!connection) throw new Error('a subscription needs a WebSocket connection context');
  return connection;
}
