import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Live updates: every committed change of a subscribed model's rows becomes rows of
 * `realtime_events` and a NOTIFY on `bastion_changes` naming only the transaction and the model,
 * written by statement-level triggers, so no path can change a row unheard (the data API, a cascade
 * from a deleted account or post, an operator's SQL) and a bulk statement costs one INSERT of events
 * and one notification, not one per row. PostgreSQL delivers the NOTIFY when the transaction
 * commits, in commit order, once per transaction and model.
 *
 * `bastion_record_changes(model, column…)`: the trigger's arguments name the model and the columns
 * whose values before an update or delete are kept with the event (the owner, the named filters'
 * columns, the filterable ones): what an instance needs to tell who could read the row before the
 * change, without putting row data in the notification. A restore sets `bastion.record_changes`
 * to off for its transaction: restored rows are not changes anyone subscribed to. `tx` names the
 * writing transaction: the listeners read a transaction's events by it (and with Redis as the
 * transport, the writer finds its own just before COMMIT).
 */
export class Realtime1796900000000 implements MigrationInterface {
  name = 'Realtime1796900000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "realtime_events" ("id" BIGSERIAL NOT NULL, "model" text NOT NULL, "row_id" uuid NOT NULL, ` +
        `"kind" text NOT NULL, "before" jsonb, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), ` +
        `"tx" bigint NOT NULL DEFAULT txid_current(), ` +
        `CONSTRAINT "PK_realtime_events" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_realtime_events_created_at" ON "realtime_events" ("created_at") `);
    await queryRunner.query(`CREATE INDEX "IDX_realtime_events_tx" ON "realtime_events" ("tx") `);
    await queryRunner.query(`
      CREATE FUNCTION bastion_record_changes() RETURNS trigger
      LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
      DECLARE
        kept text[] := TG_ARGV[1:TG_NARGS - 1];
        changed bigint;
      BEGIN
        IF current_setting('bastion.record_changes', true) = 'off' THEN
          RETURN NULL;
        END IF;
        IF TG_OP = 'INSERT' THEN
          SELECT count(*) INTO changed FROM new_rows;
        ELSE
          SELECT count(*) INTO changed FROM old_rows;
        END IF;
        IF changed = 0 THEN
          RETURN NULL;
        END IF;
        IF changed > 10000 THEN
          -- More rows than a listener delivers one by one (a bulk load): one marker, and its followers refetch (1012).
          INSERT INTO realtime_events (model, row_id, kind) VALUES (TG_ARGV[0], '00000000-0000-0000-0000-000000000000', 'BULK');
        ELSIF TG_OP = 'INSERT' THEN
          INSERT INTO realtime_events (model, row_id, kind) SELECT TG_ARGV[0], id, 'CREATED' FROM new_rows;
        ELSE
          INSERT INTO realtime_events (model, row_id, kind, before)
            SELECT TG_ARGV[0], earlier.id, CASE TG_OP WHEN 'UPDATE' THEN 'UPDATED' ELSE 'DELETED' END,
                   (SELECT COALESCE(jsonb_object_agg(key, value), '{}'::jsonb) FROM jsonb_each(to_jsonb(earlier)) WHERE key = ANY (kept))
              FROM old_rows earlier;
        END IF;
        -- One notification per transaction and model: PostgreSQL folds a transaction's identical payloads.
        PERFORM pg_notify('bastion_changes', txid_current() || ':' || TG_ARGV[0]);
        RETURN NULL;
      END
      $$`);
    for (const statement of [...changeTriggers('posts', "'Post', 'author_id', 'published', 'title', 'created_at'"), ...changeTriggers('comments', "'Comment', 'author_id', 'post_id', 'created_at'")])
      await queryRunner.query(statement);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['comments', 'posts'])
      for (const suffix of ['created', 'updated', 'deleted']) await queryRunner.query(`DROP TRIGGER "${table}_${suffix}" ON "${table}"`);
    await queryRunner.query('DROP FUNCTION bastion_record_changes()');
    await queryRunner.query('DROP TABLE "realtime_events"');
  }
}

/** A table's three change triggers (statement-level: one INSERT of events per statement, however many rows it touched). */
function changeTriggers(table: string, args: string): string[] {
  return [
    `CREATE TRIGGER "${table}_created" AFTER INSERT ON "${table}" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bastion_record_changes(${args})`,
    `CREATE TRIGGER "${table}_updated" AFTER UPDATE ON "${table}" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION bastion_record_changes(${args})`,
    `CREATE TRIGGER "${table}_deleted" AFTER DELETE ON "${table}" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION bastion_record_changes(${args})`,
  ];
}
