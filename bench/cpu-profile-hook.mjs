// Preloaded with `node --import` by bench/profile.mjs: SIGUSR2 starts the V8 CPU profiler, the next SIGUSR2
// stops it and writes $BENCH_CPU_PROFILE_OUT. Lets us profile only the loaded phase of an unmodified dist/main.js.
import fs from 'node:fs';
import { Session } from 'node:inspector';

const out = process.env.BENCH_CPU_PROFILE_OUT;
const intervalUs = Number(process.env.BENCH_CPU_PROFILE_INTERVAL_US ?? 500);
const session = new Session();
session.connect();
let running = false;

process.on('SIGUSR2', () => {
  if (!running) {
    running = true;
    session.post('Profiler.enable', () =>
      session.post(
        'Profiler.setSamplingInterval',
        { interval: intervalUs },
        () =>
          session.post('Profiler.start', () =>
            fs.writeFileSync(`${out}.started`, ''),
          ),
      ),
    );
  } else {
    session.post('Profiler.stop', (err, result) => {
      running = false;
      fs.writeFileSync(
        out,
        JSON.stringify(err ? { error: String(err) } : result.profile),
      );
    });
  }
});
