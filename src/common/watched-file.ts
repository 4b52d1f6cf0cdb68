import { readFileSync, type Stats, unwatchFile, watchFile } from 'node:fs';

export interface WatchedFileOptions<T> {
  readonly path: string;
  /** Parses and validates the file's text; throws when it cannot be used. */
  readonly parse: (text: string) => T;
  /** A new good version, in force from now on. */
  readonly onChange: (value: T) => void;
  /** A new version that cannot be used (or read): the last good one stays. */
  readonly onRefused: (err: unknown) => void;
  /** How often the file is stat()ed: polled, so a Kubernetes symlink swap is seen too. */
  readonly pollMs: number;
}

/**
 * A file read and validated at boot (a bad one throws, to stop the process)
 * and then kept current: a change is read once the file has stopped
 * changing for one poll (a file written in place is never read half
 * written), and applied only when it parses and validates whole; otherwise
 * the last good version stays.
 */
export class WatchedFile<T> {
  private value: T;
  private settling: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: WatchedFileOptions<T>) {
    this.value = options.parse(readFileSync(options.path, 'utf8'));
    watchFile(
      options.path,
      { interval: options.pollMs, persistent: false },
      (current) => this.changed(current),
    );
  }

  /** The version in force. */
  get current(): T {
    return this.value;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.settling);
    unwatchFile(this.options.path);
  }

  private changed(seen: Stats): void {
    clearTimeout(this.settling);
    // Read once the file is as this poll saw it, after the next poll: a
    // writer still at work moves its size or mtime, and that change
    // restarts the wait.
    this.settling = setTimeout(() => {
      if (!this.closed) this.readIfSettled(seen);
    }, this.options.pollMs * 1.5);
    this.settling.unref();
  }

  private readIfSettled(seen: Stats): void {
    let text: string;
    try {
      text = readFileSync(this.options.path, 'utf8');
    } catch (err) {
      this.options.onRefused(err);
      return;
    }
    if (Buffer.byteLength(text) !== seen.size) return; // still being written

    let next: T;
    try {
      next = this.options.parse(text);
    } catch (err) {
      this.options.onRefused(err);
      return;
    }
    this.value = next;
    this.options.onChange(next);
  }
}
