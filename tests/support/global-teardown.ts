import fs from 'node:fs';
import { withAdminClient } from './test-database';

export default async function globalTeardown(): Promise<void> {
  const server = globalThis.bastionTestServer;
  if (!server) return;
  await withAdminClient(server.adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(server.template)} WITH (FORCE)`));
  await server.embedded?.stop();
  if (server.scratchDir) fs.rmSync(server.scratchDir, { recursive: true, force: true });
}
