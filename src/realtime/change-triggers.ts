import type { DataSource } from 'typeorm';
import type { ModelDefinition } from '../data/define-model';

/** The statement that makes a model's change trigger: what its migration must hold. */
export function changeTriggerSql(model: ModelDefinition): string {
  const args = [model.name, ...model.changeColumns].map((arg) => `'${arg}'`).join(', ');
  return (
    `CREATE TRIGGER "${model.table}_changes" AFTER INSERT OR UPDATE OR DELETE ON "${model.table}" ` +
    `FOR EACH ROW EXECUTE FUNCTION bastion_record_change(${args})`
  );
}

/**
 * A subscribed model whose table has no change trigger (or one that keeps too few columns to
 * place a row) would deliver nothing, or decide on missing values: the server refuses to start,
 * naming the statement its migration needs.
 */
export async function checkChangeTriggers(dataSource: DataSource, models: readonly ModelDefinition[]): Promise<void> {
  if (models.length === 0) return;
  const triggers = await dataSource.query<{ table: string; args: string }[]>(
    `SELECT c.relname AS table, encode(t.tgargs, 'escape') AS args
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
      WHERE p.proname = 'bastion_record_change' AND NOT t.tgisinternal`,
  );
  const problems = models.flatMap((model) => {
    const found = triggers.find((trigger) => trigger.table === model.table);
    // tgargs: each argument followed by a NUL byte (shown as \000 by encode(…, 'escape')).
    const args = found ? found.args.split('\\000').filter((arg) => arg !== '') : [];
    const complete = args[0] === model.name && model.changeColumns.every((column) => args.slice(1).includes(column));
    return complete ? [] : [`${model.name}: add to a migration: ${changeTriggerSql(model)}`];
  });
  if (problems.length > 0)
    throw new Error(`Models with subscriptions need their change trigger (README "Realtime"):\n  ${problems.join('\n  ')}`);
}
