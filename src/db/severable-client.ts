import net from 'node:net';
import { Client, ClientConfig } from 'pg';

/**
 * A pg Client on a socket Bastion holds, so the connection can be cut at once (`sever`): the server
 * then rolls back what it was running and lets go of its locks. `client.end()` waits on the peer,
 * which never answers when it has gone silent or sits behind a COPY left mid-stream.
 */
export function severableClient(config: ClientConfig): { client: Client; sever: () => void } {
  let socket: net.Socket | undefined;
  const client = new Client({ ...config, stream: () => (socket = new net.Socket()) });
  return { client, sever: () => socket?.destroy() };
}
