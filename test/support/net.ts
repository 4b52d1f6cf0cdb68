import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';

/**
 * A port on 127.0.0.1 that nothing listens on: any free one, or `port`
 * itself (rejects when it is taken). Resolves once it is released again.
 */
export async function freePort(port = 0): Promise<number> {
  const server = createServer();
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const { port: bound } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return bound;
}
