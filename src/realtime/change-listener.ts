import { DataSource, In } from 'typeorm';
import { blindIndexedProperties } from '../crypto/encrypted-column';
import type { Notifications } from '../db/notifications';
import type { ModelDefinition } from '../data/define-model';
import type { RowValues } from '../data/model-reader';
import type { Logger } from '../logging';
import type { HeardChange, SubscriptionHub } from './subscription-hub';

/** The channel the change triggers notify on (the Realtime migration): `<transaction id>:<Model>`, ids only. */
export const CHANGES_CHANNEL = 'bastion_changes';

const PAYLOAD = /^(\d{1,20}):([A-Za-z][A-Za-z0-9_]{0,62})$/;

/** Most events one batch reads; past it the followers are closed (1012) and refetch: a bulk change is cheaper re-read than replayed. */
const MAX_EVENTS_PER_BATCH = 10_000;

/** Rows whose last event id is remembered (for the order check); past it the memory starts over. */
const MAX_REMEMBERED_ROWS = 100_000;

interface Heard {
  readonly tx: string;
  readonly model: string;
}

interface EventRow {
  readonly id: string;
  readonly model: string;
  /** BULK: one statement changed more rows than are delivered one by one (the trigger kept no rows). */
  readonly kind: 'CREATED' | 'UPDATED' | 'DELETED' | 'BULK';
  readonly rowId: string;
  readonly before: Record<string, unknown> | null;
}

/**
 * Hears every committed transaction that changed a subscribed model (every instance hears every
 * one) and, when someone on this instance follows the model, reads the transaction's events and
 * each changed row once, whatever the number of subscribers, then hands them to the hub.
 * Notifications that arrive while a batch is being delivered form the next batch, so a backlog is
 * read in a few large batches rather than many small ones. Batches are delivered one after the
 * other, so a subscriber sees one row's changes in commit order (the order PostgreSQL delivers
 * the notifications in).
 */
export class ChangeListener {
  private readonly models: ReadonlyMap<string, ModelDefinition>;
  private readonly placingFields: ReadonlyMap<string, readonly PlacingField[]>;
  private pending: Heard[] = [];
  private draining = false;
  private drained: Promise<void> = Promise.resolve();
  private readonly lastEventOf = new Map<string, number>();
  /**
   * Each followed row's placement as its last delivery read it. The next change is decided from it
   * rather than from the event's own before-image: a row read "now" may already show a later
   * transaction, whose event then arrives with that state as its "before"; deciding from what
   * subscribers were last told keeps CREATED, UPDATED and DELETED consistent across batches.
   */
  private readonly deliveredAs = new Map<string, Map<string, RowValues | null>>();
  /** Row reads (one per model per batch), for the bench's one-read-per-change check. */
  rowReads = 0;

  constructor(
    private readonly dataSource: DataSource,
    models: readonly ModelDefinition[],
    private readonly hub: SubscriptionHub,
    private readonly logger: Logger,
    /** PostgreSQL NOTIFY, or null when the changes come from Redis (`hear` is then called with each message). */
    notifications: Notifications | null,
  ) {
    this.models = new Map(models.filter((model) => model.subscriptions).map((model) => [model.name, model]));
    this.placingFields = new Map([...this.models.values()].map((model) => [model.name, placingFieldsOf(model)]));
    notifications?.subscribe(CHANGES_CHANNEL, (payload) => this.hear(payload));
  }

  /** One notification: a transaction changed rows of a model. */
  hear(payload: string): void {
    const match = PAYLOAD.exec(payload);
    if (!match) {
      this.logger.warn({ channel: CHANGES_CHANNEL }, 'realtime: a change notification this version does not read; ignored');
      return;
    }
    const [, tx, model] = match;
    if (!this.models.has(model)) return;
    if (!this.hub.isFollowed(model)) {
      // Its changes are not read while nobody follows it: what was delivered before says nothing any more.
      this.deliveredAs.delete(model);
      return;
    }
    this.pending.push({ tx, model });
    if (!this.draining) {
      this.draining = true;
      // What arrives in the same turn of the event loop joins the first batch.
      this.drained = new Promise((resolve) => setImmediate(() => void this.drain().then(resolve)));
    }
  }

  /** Changes may have been missed (the listening connection was away, a restore): every follower refetches, and what they were told is forgotten. */
  missed(): void {
    this.deliveredAs.clear();
    this.hub.changesMissed();
  }

  /** Resolves once every change heard so far has been delivered (tests, the bench). */
  async settled(): Promise<void> {
    while (this.draining) await this.drained;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        try {
          await this.process(batch);
        } catch (error) {
          this.logger.error({ err: error }, 'realtime: a batch of changes could not be delivered; its followers reconnect and refetch');
          this.missed();
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async process(batch: readonly Heard[]): Promise<void> {
    const events = await this.dataSource.query<EventRow[]>(
      `SELECT id::text AS id, model, kind, row_id::text AS "rowId", before FROM realtime_events
        WHERE tx = ANY($1::bigint[]) AND model = ANY($2::text[]) ORDER BY id LIMIT ${MAX_EVENTS_PER_BATCH + 1}`,
      [[...new Set(batch.map((heard) => heard.tx))], [...new Set(batch.map((heard) => heard.model))]],
    );
    if (events.length > MAX_EVENTS_PER_BATCH) {
      this.logger.info(
        { events: events.length },
        'realtime: too many changes at once to deliver one by one; followers reconnect and refetch',
      );
      this.missed();
      return;
    }
    const byModel = new Map<string, EventRow[]>();
    const bulk = new Set(events.filter((event) => event.kind === 'BULK').map((event) => event.model));
    for (const model of bulk) this.hub.changedInBulk(model);
    for (const event of events) {
      if (bulk.has(event.model)) continue;
      // Through Redis, two writers' commits of one row may arrive swapped; the later event (a row's
      // event ids grow in commit order: each writer waited for the other's row lock) already reads the row as it is now.
      const id = Number(event.id);
      const last = this.lastEventOf.get(event.rowId);
      if (last !== undefined && id <= last) continue;
      if (this.lastEventOf.size >= MAX_REMEMBERED_ROWS) this.lastEventOf.clear();
      this.lastEventOf.set(event.rowId, id);
      const list = byModel.get(event.model);
      if (list) list.push(event);
      else byModel.set(event.model, [event]);
    }
    for (const [name, modelEvents] of byModel) {
      const model = this.models.get(name);
      if (!model || !this.hub.isFollowed(name)) continue;
      const ids = [...new Set(modelEvents.map((event) => event.rowId))];
      this.rowReads += 1;
      const rows = (await this.dataSource.getRepository(model.entity).findBy({ id: In(ids) })) as RowValues[];
      const now = new Map(rows.map((row) => [row.id as string, row]));
      const placing = this.placingFields.get(name)!;
      let delivered = this.deliveredAs.get(name);
      if (!delivered || delivered.size >= MAX_REMEMBERED_ROWS)
        this.deliveredAs.set(name, (delivered = new Map<string, RowValues | null>()));
      // A row changed twice in one batch is one change: from its state before the first to its state now.
      const changes = new Map<string, HeardChange>();
      for (const event of modelEvents) {
        if (changes.has(event.rowId)) continue;
        const before =
          event.kind === 'CREATED'
            ? null
            : delivered.has(event.rowId)
              ? delivered.get(event.rowId)!
              : placementOf(placing, event.before ?? {});
        const after = now.get(event.rowId) ?? null;
        changes.set(event.rowId, { id: event.rowId, before, after });
        delivered.set(event.rowId, after === null ? null : placementOfRow(placing, after));
      }
      await this.hub.deliver(model, [...changes.values()]);
    }
  }
}

/** A field that places a row: its property on the row as read, its key in what the trigger kept, whether it is an instant. */
interface PlacingField {
  readonly property: string;
  readonly column: string;
  readonly instant: boolean;
}

/** The fields whose values the trigger keeps (model.changeColumns); an encrypted one by its blind index. */
function placingFieldsOf(model: ModelDefinition): PlacingField[] {
  const indexes = blindIndexedProperties(model.entity);
  return model.fields.flatMap((field): PlacingField[] => {
    if (!field.encrypted)
      return model.changeColumns.includes(field.column)
        ? [{ property: field.name, column: field.column, instant: field.kind === 'datetime' }]
        : [];
    const index = indexes.find((candidate) => candidate.property === field.name);
    return index && field.blindIndexColumn && model.changeColumns.includes(field.blindIndexColumn)
      ? [{ property: index.indexProperty, column: field.blindIndexColumn, instant: false }]
      : [];
  });
}

/** The values that place a row, from the row as read. */
function placementOfRow(fields: readonly PlacingField[], row: RowValues): RowValues {
  return Object.fromEntries(fields.map((field) => [field.property, row[field.property]]));
}

/** A row's earlier state as the trigger kept it (column names, JSON values) as the values a decision reads. */
function placementOf(fields: readonly PlacingField[], kept: Record<string, unknown>): RowValues {
  const values: RowValues = {};
  for (const field of fields) {
    if (!Object.hasOwn(kept, field.column)) continue;
    const value = kept[field.column];
    values[field.property] = field.instant && typeof value === 'string' ? new Date(value) : value;
  }
  return values;
}
