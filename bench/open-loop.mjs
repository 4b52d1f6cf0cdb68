// Open-loop load: requests arrive at a fixed rate whatever the answers take (as users
// do), unlike a closed loop that slows down with the server. Used by the overload
// bench and test/overload.e2e-spec.ts.
import http from 'node:http';

const BODY = '{"request":{"text":"overload test"}}';

/**
 * Sends `rps` POSTs per second to `url` for `durationMs`; resolves when every answer is in
 * (or failed), with one { status, ms, overloaded, retryAfter } per request (status 0: transport error).
 * `headers` go on every request (a client's credentials), `body` replaces the /predict one.
 * @param {{ url: string, rps: number, durationMs: number, headers?: Record<string, string>, body?: string }} options
 */
export async function openLoop({
  url,
  rps,
  durationMs,
  headers = {},
  body = BODY,
}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  const results = [];
  const pending = [];
  const started = performance.now();
  let sent = 0;
  const one = () =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const record = (status, extra = {}) => {
        results.push({ status, ms: performance.now() - t0, ...extra });
        resolve();
      };
      const req = http.request(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...headers,
          },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.once('end', () => {
            let overloaded = false;
            if (res.statusCode === 503) {
              try {
                overloaded =
                  JSON.parse(Buffer.concat(chunks).toString()).code ===
                  'overloaded';
              } catch {
                // not JSON: not ours
              }
            }
            record(res.statusCode ?? 0, {
              overloaded,
              retryAfter: res.headers['retry-after'],
            });
          });
          res.once('error', () => record(0));
        },
      );
      req.once('error', () => record(0));
      req.end(body);
    });
  await new Promise((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - started;
      const due = Math.min(
        Math.floor((elapsed * rps) / 1000),
        Math.floor((durationMs * rps) / 1000),
      );
      while (sent < due) {
        sent++;
        pending.push(one());
      }
      if (elapsed >= durationMs) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.all(pending);
  agent.destroy();
  return results;
}

export function percentile(values, p) {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  ];
}

/**
 * Goodput = 200 answers within `deadlineMs`, per second of `durationMs`; p99 of
 * those served and of the 503 overloaded refusals.
 */
export function summarize(results, { durationMs, deadlineMs }) {
  const served = results.filter((r) => r.status === 200);
  const shed = results.filter((r) => r.status === 503 && r.overloaded);
  const good = served.filter((r) => r.ms <= deadlineMs);
  const round = (x) => Math.round(x * 10) / 10;
  return {
    sent: results.length,
    served: served.length,
    goodputRps: round(good.length / (durationMs / 1000)),
    p50ServedMs: round(
      percentile(
        served.map((r) => r.ms),
        50,
      ),
    ),
    p99ServedMs: round(
      percentile(
        served.map((r) => r.ms),
        99,
      ),
    ),
    shed: shed.length,
    p99ShedMs: round(
      percentile(
        shed.map((r) => r.ms),
        99,
      ),
    ),
    shedWithRetryAfter: shed.filter((r) => r.retryAfter !== undefined).length,
    timeouts: results.filter((r) => r.status === 504).length,
    other:
      results.length -
      served.length -
      shed.length -
      results.filter((r) => r.status === 504).length,
  };
}

/**
 * p99 of the gateway's own time (its access log's duration_ms, from the
 * request's headers to its answer) for the 503 overloaded refusals in `logText`
 * (JSON lines; LOG_LEVEL=error logs every 5xx). The client's figure adds the
 * load generator's and the kernel's delays on a shared machine.
 */
export function gatewayShedP99(logText) {
  return Math.round(percentile(gatewayShedMs(logText), 99) * 100) / 100;
}

/** The gateway's own time (ms) of every 503 in `logText`, as gatewayShedP99 reads them. */
export function gatewayShedMs(logText) {
  const ms = [];
  for (const line of logText.split('\n')) {
    if (!line.includes('"status":503')) continue;
    try {
      const entry = JSON.parse(line);
      if (entry.status === 503 && typeof entry.duration_ms === 'number')
        ms.push(entry.duration_ms);
    } catch {
      // not a log line
    }
  }
  return ms;
}
