import { destination } from 'pino';

/** Batch size and longest wait of a log line. */
const BATCH_CHARS = 4096;
const FLUSH_MS = 200;

type SonicBoom = ReturnType<typeof destination>;

/**
 * pino's stdout: asynchronous and in batches, since a write() per line cost
 * more CPU than the rest of the proxy path. Lines go out ~4 KiB at a time,
 * 200 ms after they were logged at the latest, and what is left when the
 * process exits. The lines are joined here and sonic-boom gets whole
 * batches: it appends every write to one growing string and measures that
 * string again, a copy of the batch so far per line (~2 us a line at c=32).
 */
export class LogDestination {
  private lines: string[] = [];
  private chars = 0;

  constructor(private readonly out: SonicBoom) {}

  /** Called by pino with one line. */
  write(line: string): boolean {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= BATCH_CHARS) this.handOver();
    return true;
  }

  /** pino's logger.flush(); also the timer's. */
  flush(done?: (err?: Error) => void): void {
    this.handOver();
    this.out.flush(done);
  }

  flushSync(): void {
    this.handOver();
    this.out.flushSync();
  }

  private handOver(): void {
    if (this.lines.length === 0) return;
    const batch = this.lines.join('');
    this.lines = [];
    this.chars = 0;
    this.out.write(batch);
  }
}

let stdout: LogDestination | undefined;

/** The process' one stdout destination (every application in it shares it). */
export function stdoutDestination(): LogDestination {
  if (stdout) return stdout;
  const created = new LogDestination(
    destination({
      dest: 1,
      sync: false,
      // A whole batch is written as it comes; a partial one (the timer's,
      // the last at exit) waits for flush() or flushSync().
      minLength: BATCH_CHARS,
      maxLength: 16 * 1024 * 1024,
    }),
  );
  setInterval(() => created.flush(), FLUSH_MS).unref();
  // Before or after pino's own exit flush: either way sonic-boom still holds
  // the last lines (below its minLength) and writes them synchronously.
  process.once('exit', () => created.flushSync());
  return (stdout = created);
}
