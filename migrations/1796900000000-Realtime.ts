import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Live updates: every committed change of a subscribed model's row becomes a row of
 * `realtime_events` and a NOTIFY on `bastion_changes` carrying ids only, written by a trigger, so
 * no path can change a row unheard (the data API, a cascade from a deleted account or post, an
 * operator's SQL). PostgreSQL delivers the NOTIFY when the transaction commits, in commit order.
 *
 * `bastion_record_change(model, column…)`: the trigger's arguments name the model and the columns
 * whose values before an update or delete are kept with the event (the owner, the named filters'
 * columns, the filterable ones): what an instance needs to tell who could read the row before the
 * change, without putting row data in the notification. A restore sets `bastion.record_changes`
 * to off for its transaction: restored rows are not changes anyone subscribed to. `tx` names the
 * writing transaction: with Redis as the transport, the writer finds its transaction's events by
 * it just before COMMIT and publishes them after.
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
      CREATE FUNCTION bastion_record_change() RETURNS trigger
      LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
      DECLARE
        event_id bigint;
        changed_id uuid;
        kept jsonb;
      BEGIN
        IF current_setting('bastion.record_changes', true) = 'off' THEN
          RETURN NULL;
        END IF;
        IF TG_OP = 'INSERT' THEN
          changed_id := NEW.id;
        ELSE
          changed_id := OLD.id;
          SELECT COALESCE(jsonb_object_agg(key, value), '{}'::jsonb) INTO kept
            FROM jsonb_each(to_jsonb(OLD)) WHERE key = ANY (TG_ARGV[1:TG_NARGS - 1]);
        END IF;
        INSERT INTO realtime_events (model, row_id, kind, before)
          VALUES (TG_ARGV[0], changed_id, CASE TG_OP WHEN 'INSERT' THEN 'CREATED' WHEN 'UPDATE' THEN 'UPDATED' ELSE 'DELETED' END, kept)
          RETURNING id INTO event_id;
        PERFORM pg_notify('bastion_changes', event_id || ':' || CASE TG_OP WHEN 'INSERT' THEN 'C' WHEN 'UPDATE' THEN 'U' ELSE 'D' END || ':' || TG_ARGV[0] || ':' || changed_id);
        RETURN NULL;
      END
      $$`);
    await queryRunner.query(
      `CREATE TRIGGER "posts_changes" AFTER INSERT OR UPDATE OR DELETE ON "posts" FOR EACH ROW ` +
        `EXECUTE FUNCTION bastion_record_change('Post', 'author_id', 'published', 'title', 'created_at')`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "comments_changes" AFTER INSERT OR UPDATE OR DELETE ON "comments" FOR EACH ROW ` +
        `EXECUTE FUNCTION bastion_record_change('Comment', 'author_id', 'post_id', 'created_at')`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TRIGGER "comments_changes" ON "comments"');
    await queryRunner.query('DROP TRIGGER "posts_changes" ON "posts"');
    await queryRunner.query('DROP FUNCTION bastion_record_change()');
    await queryRunner.query('DROP TABLE "realtime_events"');
  }
}
