import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Least privilege for the role the server runs as, when migrations run as another role (the
 * schema's owner, BASTION_MIGRATION_DATABASE_URL):
 *
 * - `bastion_grant_runtime_privileges(role)` grants it DML on the tables, but on `audit_events`
 *   only SELECT and INSERT and on `migrations` only SELECT. `bastion migrate` calls it after every
 *   run, so a table a later migration adds is granted too; a migration that changes what the
 *   server needs replaces the function.
 * - `bastion_prune_audit_events(through_id, cutoff)` is how retention removes old events without
 *   DELETE on the table: it runs as its owner (SECURITY DEFINER) and removes only a run of events
 *   from the start of the log, each older than the cutoff, and the cutoff at least a day in the
 *   past by the database's clock. So the server's role can never edit an event, nor remove a
 *   recent one.
 *
 * With one role (development, or no migration role) the functions exist all the same and the
 * server's role owns everything.
 */
export class RuntimeRole1796581020003 implements MigrationInterface {
  name = 'RuntimeRole1796581020003';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION bastion_prune_audit_events(through_id bigint, cutoff timestamptz) RETURNS integer
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
      DECLARE
        removed integer;
      BEGIN
        IF cutoff > now() - interval '1 day' THEN
          RAISE EXCEPTION 'audit events of the last day are never pruned (cutoff %)', cutoff USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF EXISTS (SELECT 1 FROM public.audit_events WHERE id <= through_id AND at >= cutoff) THEN
          RAISE EXCEPTION 'audit events up to id % are not all older than %', through_id, cutoff USING ERRCODE = 'insufficient_privilege';
        END IF;
        DELETE FROM public.audit_events WHERE id <= through_id;
        GET DIAGNOSTICS removed = ROW_COUNT;
        RETURN removed;
      END
      $$`);
    // Functions are executable by PUBLIC unless revoked: only the owner and the granted runtime role may prune.
    await queryRunner.query('REVOKE ALL ON FUNCTION bastion_prune_audit_events(bigint, timestamptz) FROM PUBLIC');
    await queryRunner.query(`
      CREATE FUNCTION bastion_grant_runtime_privileges(runtime_role name) RETURNS void
      LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
      BEGIN
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', runtime_role);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', runtime_role);
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', runtime_role);
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON public.audit_events FROM %I', runtime_role);
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON public.migrations FROM %I', runtime_role);
        EXECUTE format('GRANT EXECUTE ON FUNCTION public.bastion_prune_audit_events(bigint, timestamptz) TO %I', runtime_role);
      END
      $$`);
    await queryRunner.query('REVOKE ALL ON FUNCTION bastion_grant_runtime_privileges(name) FROM PUBLIC');
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP FUNCTION bastion_grant_runtime_privileges(name)');
    await queryRunner.query('DROP FUNCTION bastion_prune_audit_events(bigint, timestamptz)');
  }
}
