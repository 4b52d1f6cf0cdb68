// The ending every HTTP server the bench spawns shares (upstream, bare proxy, OTLP sink).
import { fstatSync } from 'node:fs';

/**
 * Listens on 127.0.0.1:`port`, prints `LISTENING <port>` (what spawnListening
 * in bench/lib.mjs waits for), and exits with the harness, which holds our
 * stdin (a pipe) open, or on SIGTERM.
 */
export function listenForHarness(server, port) {
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
  });
  if (fstatSync(0).isFIFO()) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  }
  process.on('SIGTERM', () => process.exit(0));
}
