/**
 * The DataSource for the TypeORM CLI (`npx typeorm -d dist/ormconfig.js …` after `npm run build`).
 * It needs DATABASE_URL; `bastion migrate` does the same work and also starts the embedded
 * PostgreSQL when DATABASE_URL is unset.
 */
import { createDataSource } from './src/db/data-source';
import { tablesOf } from './src/feature';
import { FEATURES } from './src/features';
import { loadProcessConfig } from './src/settings';

const config = loadProcessConfig();
if (!config.databaseUrl) {
  throw new Error('ormconfig.ts needs DATABASE_URL; or use `npx bastion migrate`, which starts the embedded PostgreSQL');
}

export default createDataSource({ url: config.databaseUrl, poolSize: 2, ...tablesOf(FEATURES) });
