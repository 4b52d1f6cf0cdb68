// `npm run demo`: the gateway on :8080 in front of the bundled demo sentiment
// backend (demo/server.mjs on :3000). With BACKEND_URL or BACKEND_URLS set, the
// gateway is started alone against those backends instead.
import { spawn } from 'node:child_process';

const ownBackend = !process.env.BACKEND_URL && !process.env.BACKEND_URLS;
const demoPort = process.env.DEMO_PORT ?? '3000';
const children = [];

function start(name, args, env) {
  const child = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited (${signal ?? code}); stopping the demo`);
      stop(code ?? 1);
    }
  });
  children.push(child);
  return child;
}

let stopping = false;
function stop(code = 0) {
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  setTimeout(() => process.exit(code), 1500).unref();
  Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null))).then(() => process.exit(code));
}
process.once('SIGINT', () => stop(0));
process.once('SIGTERM', () => stop(0));

if (ownBackend) {
  start('demo backend', ['demo/server.mjs'], { DEMO_PORT: demoPort, DEMO_HOST: '127.0.0.1' });
}
start('gateway', ['dist/main.js'], ownBackend ? { BACKEND_URL: `http://127.0.0.1:${demoPort}` } : {});
console.error(
  `\napi-gateway demo: try\n  curl -X POST localhost:${process.env.GATEWAY_PORT ?? process.env.PORT ?? 8080}/predict -H 'content-type: application/json' -d '{"request":{"text":"I love it"}}'\n`,
);
