import type { Tables } from '../../src/db/data-source';
import { tablesOf } from '../../src/feature';
import { FEATURES } from '../../src/features';

/** The app's entities and subscribers, plus a test's own entities, for a data source of its own. */
export function appTables(...extraEntities: Function[]): Tables {
  const tables = tablesOf(FEATURES);
  return { entities: [...tables.entities, ...extraEntities], subscribers: tables.subscribers };
}
