// The Node floor: the least a node:http reverse proxy with upstream keep-alive can cost.
// Usage: node bench/bare-proxy.mjs --upstream http://127.0.0.1:PORT [--port 0]  -> prints "LISTENING <port>".
import http from 'node:http';
import { parseArgs } from 'node:util';
import { listenForHarness } from './harness-child.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    upstream: { type: 'string' },
  },
});
const target = new URL(values.upstream);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

const server = http.createServer((req, res) => {
  const upstreamReq = http.request(
    {
      agent,
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
    },
    (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode, upstreamRes.headers);
      upstreamRes.pipe(res);
    },
  );
  upstreamReq.on('error', () => {
    res.writeHead(502).end();
  });
  req.pipe(upstreamReq);
});
server.keepAliveTimeout = 120_000;
listenForHarness(server, Number(values.port));
