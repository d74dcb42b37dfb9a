import { DataSource, In } from 'typeorm';
import { blindIndexedProperties } from '../crypto/encrypted-column';
import type { Notifications } from '../db/notifications';
import type { ModelDefinition } from '../data/define-model';
import type { RowValues } from '../data/model-reader';
import type { Logger } from '../logging';
import type { HeardChange, SubscriptionHub } from './subscription-hub';

/** The channel the change triggers notify on (the Realtime migration): `<event id>:<C|U|D>:<Model>:<row id>`, ids only. */
export const CHANGES_CHANNEL = 'bastion_changes';

interface Heard {
  readonly eventId: string;
  readonly operation: 'C' | 'U' | 'D';
  readonly model: string;
  readonly rowId: string;
}

const PAYLOAD = /^(\d+):([CUD]):([A-Za-z][A-Za-z0-9_]*):([0-9a-f-]{36})$/;

/** Rows whose last event id is remembered (for the order check); past it the memory starts over. */
const MAX_REMEMBERED_ROWS = 100_000;

/**
 * Hears every committed change of a subscribed model (every instance hears every one), and, when
 * someone on this instance follows the model, reads each changed row once (whatever the number of
 * subscribers) and hands the batch to the hub. Notifications that arrive together are one batch:
 * one statement for their rows' earlier states, one per model for the rows. Batches are handled one
 * after the other, so one subscriber sees one row's changes in commit order (the order PostgreSQL
 * delivers the notifications in).
 */
export class ChangeListener {
  private readonly models: ReadonlyMap<string, ModelDefinition>;
  private pending: Heard[] = [];
  private readonly lastEventOf = new Map<string, number>();
  private scheduled = false;
  private processing: Promise<void> = Promise.resolve();
  /** Row reads, for the bench's one-read-per-change check. */
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
    notifications?.subscribe(CHANGES_CHANNEL, (payload) => this.hear(payload));
  }

  /** Resolves once every change heard so far has been delivered (tests and shutdown). */
  async settled(): Promise<void> {
    while (this.scheduled || this.pending.length > 0) await new Promise((resolve) => setImmediate(resolve));
    await this.processing;
  }

  /** One change's notification payload. */
  hear(payload: string): void {
    const match = PAYLOAD.exec(payload);
    if (!match) {
      this.logger.warn({ channel: CHANGES_CHANNEL }, 'realtime: a change notification this version does not read; ignored');
      return;
    }
    const [, eventId, operation, model, rowId] = match;
    if (!this.models.has(model) || !this.hub.isFollowed(model)) return;
    // Through Redis, two writers' commits of one row may arrive swapped; the later event (the ids of
    // one row grow in commit order: each writer waited for the other's row lock) already reads the row as it is now.
    const id = Number(eventId);
    const last = this.lastEventOf.get(rowId);
    if (last !== undefined && id <= last) return;
    if (this.lastEventOf.size >= MAX_REMEMBERED_ROWS) this.lastEventOf.clear();
    this.lastEventOf.set(rowId, id);
    this.pending.push({ eventId, operation: operation as Heard['operation'], model, rowId });
    if (this.scheduled) return;
    this.scheduled = true;
    // What arrived in the same turn of the event loop is one batch.
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.pending;
      this.pending = [];
      this.processing = this.processing
        .then(() => this.process(batch))
        .catch((error: unknown) => this.logger.error({ err: error }, 'realtime: a batch of changes could not be delivered'));
    });
  }

  private async process(batch: readonly Heard[]): Promise<void> {
    const earlier = batch.filter((heard) => heard.operation !== 'C').map((heard) => heard.eventId);
    const befores = new Map<string, Record<string, unknown> | null>();
    if (earlier.length > 0) {
      const rows = await this.dataSource.query<{ id: string; before: Record<string, unknown> | null }[]>(
        'SELECT id::text AS id, before FROM realtime_events WHERE id = ANY($1::bigint[])',
        [earlier],
      );
      for (const row of rows) befores.set(row.id, row.before);
    }
    const byModel = new Map<string, Heard[]>();
    for (const heard of batch) {
      const list = byModel.get(heard.model);
      if (list) list.push(heard);
      else byModel.set(heard.model, [heard]);
    }
    for (const [name, heardChanges] of byModel) {
      const model = this.models.get(name)!;
      const ids = [...new Set(heardChanges.map((heard) => heard.rowId))];
      this.rowReads += 1;
      const rows = (await this.dataSource.getRepository(model.entity).findBy({ id: In(ids) })) as RowValues[];
      const now = new Map(rows.map((row) => [row.id as string, row]));
      // A row changed twice in one batch is one change: from its state before the first to its state now.
      const changes = new Map<string, HeardChange>();
      for (const heard of heardChanges) {
        if (changes.has(heard.rowId)) continue;
        const before = heard.operation === 'C' ? null : placementOf(model, befores.get(heard.eventId) ?? {});
        changes.set(heard.rowId, { id: heard.rowId, before, after: now.get(heard.rowId) ?? null });
      }
      await this.hub.deliver(model, [...changes.values()]);
    }
  }
}

/** A row's earlier state as the trigger kept it (column names, JSON values) as the field values a decision reads. */
function placementOf(model: ModelDefinition, kept: Record<string, unknown>): RowValues {
  const values: RowValues = {};
  const indexes = blindIndexedProperties(model.entity);
  for (const field of model.fields) {
    if (field.encrypted) {
      const index = indexes.find((candidate) => candidate.property === field.name);
      if (index && field.blindIndexColumn && Object.hasOwn(kept, field.blindIndexColumn))
        values[index.indexProperty] = kept[field.blindIndexColumn];
      continue;
    }
    if (!Object.hasOwn(kept, field.column)) continue;
    const value = kept[field.column];
    values[field.name] = field.kind === 'datetime' && typeof value === 'string' ? new Date(value) : value;
  }
  return values;
}
