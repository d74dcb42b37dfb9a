import fs from 'node:fs';
import { dropDatabase } from '../../src/db/database';
import { withAdminClient } from './test-database';

export default async function globalTeardown(): Promise<void> {
  const server = globalThis.bastionTestServer;
  if (!server) return;
  await withAdminClient(server.adminUrl, (client) => dropDatabase(client, server.template));
  await server.embedded?.stop();
  if (server.scratchDir) fs.rmSync(server.scratchDir, { recursive: true, force: true });
}
