import type { EventEmitter } from 'node:events';

/**
 * Polls `check` (sync or async) until it holds: every `everyMs`, or on every
 * turn of the event loop with `everyMs` 0. Resolves with the milliseconds it
 * took; once `timeoutMs` has passed it rejects, naming the condition.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  everyMs = 20,
): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs)
      throw new Error(
        `until: ${conditionText(check)} still not true after ${timeoutMs} ms`,
      );
    await new Promise((resolve) =>
      everyMs > 0 ? setTimeout(resolve, everyMs) : setImmediate(resolve),
    );
  }
  return Date.now() - started;
}

/** `promise`, or a rejection with `message` if it has not settled within `ms`. */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  message = `not settled within ${ms} ms`,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves once `check` holds, checked now and at each `event` of
 * `emitter`; rejects with `failure()` after `timeoutMs`.
 */
export function whenEmitted(
  emitter: EventEmitter,
  event: string,
  check: () => boolean,
  timeoutMs: number,
  failure: () => string,
): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onEvent = () => {
      if (!check()) return;
      clearTimeout(timer);
      emitter.off(event, onEvent);
      resolve();
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(failure()));
    }, timeoutMs);
    emitter.on(event, onEvent);
  });
}

/** A plain wait, for what has no event to await (time passing is the point). */
export const sleep = (ms: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The source of a condition, on one line and short, for an error message. */
function conditionText(check: () => unknown): string {
  const source = check.toString().replace(/\s+/g, ' ');
  return source.length > 160 ? `${source.slice(0, 157)}...` : source;
}
