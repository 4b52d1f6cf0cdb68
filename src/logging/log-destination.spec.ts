import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destination } from 'pino';
import { LogDestination } from './log-destination.js';

describe('LogDestination', () => {
  let dir: string;
  let file: string;
  let out: ReturnType<typeof destination>;
  let log: LogDestination;
  const written = () => readFileSync(file, 'utf8');

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-log-'));
    file = join(dir, 'out.log');
    out = destination({ dest: file, sync: false, minLength: 4096 });
    await once(out, 'ready');
    log = new LogDestination(out);
  });

  afterEach(() => {
    out.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps lines until they make 4 KiB, then writes them whole and in order', async () => {
    const line = `${'x'.repeat(99)}\n`;
    log.write('first\n');
    for (let i = 0; i < 40; i++) log.write(line);
    expect(written()).toBe('');
    log.write(line);
    await once(out, 'write');
    expect(written()).toBe(`first\n${line.repeat(41)}`);
  });

  it('flush() writes a partial batch (the 200 ms timer)', async () => {
    log.write('one\n');
    log.flush();
    await once(out, 'write');
    expect(written()).toBe('one\n');
  });

  it('flushSync() writes what is left before it returns (the exit path)', () => {
    log.write('one\n');
    log.write('two\n');
    log.flushSync();
    expect(written()).toBe('one\ntwo\n');
  });
});
