import type { DataSource } from 'typeorm';
import type { ModelDefinition } from '../data/define-model';

/** pg_trigger.tgtype's event bits. */
const EVENTS = [
  { bit: 1 << 2, name: 'created', event: 'INSERT', table: 'NEW TABLE AS new_rows' },
  { bit: 1 << 4, name: 'updated', event: 'UPDATE', table: 'OLD TABLE AS old_rows' },
  { bit: 1 << 3, name: 'deleted', event: 'DELETE', table: 'OLD TABLE AS old_rows' },
] as const;

/** The statements that make a model's change triggers: what its migration must hold (README "Realtime"). */
export function changeTriggerSql(model: ModelDefinition): string[] {
  const args = [model.name, ...model.changeColumns].map((arg) => `'${arg}'`).join(', ');
  return EVENTS.map(
    ({ name, event, table }) =>
      `CREATE TRIGGER "${model.table}_${name}" AFTER ${event} ON "${model.table}" REFERENCING ${table} ` +
      `FOR EACH STATEMENT EXECUTE FUNCTION bastion_record_changes(${args})`,
  );
}

/**
 * A subscribed model whose table lacks a change trigger (or has one that keeps too few columns to
 * place a row) would deliver nothing, or decide on missing values: the server refuses to start,
 * naming the statements its migration needs.
 */
export async function checkChangeTriggers(dataSource: DataSource, models: readonly ModelDefinition[]): Promise<void> {
  if (models.length === 0) return;
  const triggers = await dataSource.query<{ table: string; type: number; args: string }[]>(
    `SELECT c.relname AS table, t.tgtype AS type, encode(t.tgargs, 'escape') AS args
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
      WHERE p.proname = 'bastion_record_changes' AND NOT t.tgisinternal AND t.tgenabled <> 'D'`,
  );
  const problems = models.flatMap((model) => {
    const complete = EVENTS.every(({ bit }) =>
      triggers.some((trigger) => {
        // tgargs: each argument followed by a NUL byte (shown as \000 by encode(…, 'escape')).
        const args = trigger.args.split('\\000').filter((arg) => arg !== '');
        return (
          trigger.table === model.table &&
          (trigger.type & bit) !== 0 &&
          args[0] === model.name &&
          model.changeColumns.every((column) => args.slice(1).includes(column))
        );
      }),
    );
    return complete ? [] : [`${model.name}: add to a migration:\n    ${changeTriggerSql(model).join(';\n    ')}`];
  });
  if (problems.length > 0)
    throw new Error(`Models with subscriptions need their change triggers (README "Realtime"):\n  ${problems.join('\n  ')}`);
}
