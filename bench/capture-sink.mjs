// A CloudEvents receiver for bench:capture: counts the events POSTed to it (binary mode: the ce-type header),
// answering 204 (--mode accept) or never (--mode hang: the body is read, the answer never comes).
// GET /__stats gives the counts. Usage: node bench/capture-sink.mjs [--port 0] [--mode accept|hang]
import http from 'node:http';
import { parseArgs } from 'node:util';
import { listenForHarness } from './harness-child.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    mode: { type: 'string', default: 'accept' },
  },
});
const stats = { events: 0, requests: 0, responses: 0, bytes: 0, hanging: 0 };

const server = http.createServer((req, res) => {
  req.on('data', (c) => (stats.bytes += c.length));
  req.on('end', () => {
    if (req.method === 'GET' && req.url === '/__stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(stats));
    }
    if (values.mode === 'hang') {
      stats.hanging++;
      return;
    }
    stats.events++;
    if (req.headers['ce-type']?.endsWith('.request')) stats.requests++;
    else stats.responses++;
    res.writeHead(204);
    res.end();
  });
});
server.keepAliveTimeout = 120_000;
listenForHarness(server, Number(values.port));
