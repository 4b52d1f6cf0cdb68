import type { Result } from 'ioredis';
import type { RedisClient } from '../redis/redis.service.js';
import type { LimitResult, Take } from './rate-limit.types.js';

/**
 * GCRA (the token bucket as one timestamp) over one or more buckets: each
 * KEYS[i] holds its bucket's theoretical arrival time in microseconds of
 * Redis' own clock, so replicas' clocks never matter. ARGV, per key:
 * microseconds per token, burst, cost. The request takes its cost from every
 * bucket or, when one has too few tokens, from none. One round trip, atomic;
 * a key expires when its bucket would be full, so idle clients cost nothing.
 * Returns {allowed, index (1-based) of the bucket that refused or of the one
 * with least left, its remaining, reset µs, retry-after µs}.
 */
const GCRA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local best, best_left, best_reset = 1, nil, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local next_tat = tat + interval * cost
  local allow_at = next_tat - burst * interval
  if now < allow_at then
    return {0, i, math.max(0, math.floor((now - allow_at + interval * cost) / interval)), tat - now, allow_at - now}
  end
  tats[i] = next_tat
  local left = math.floor((now - allow_at) / interval)
  if best_left == nil or left < best_left then
    best, best_left, best_reset = i, left, next_tat - now
  end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000))
end
return {1, best, best_left, best_reset, 0}
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    gatewayLimit(
      numberOfKeys: number,
      ...keysAndArgs: (string | number)[]
    ): Result<[number, number, number, number, number], Context>;
  }
}

/** Registers the script on the client: ioredis sends EVALSHA, and EVAL once after a NOSCRIPT (a restarted Redis). */
export function defineGcra(client: RedisClient): void {
  client.defineCommand('gatewayLimit', { lua: GCRA });
}

/** Takes from every bucket of `takes` (keys prefixed with `prefix`), in one call. */
export async function takeGcra(
  client: RedisClient,
  prefix: string,
  takes: readonly Take[],
): Promise<LimitResult> {
  const args: (string | number)[] = takes.map((take) => prefix + take.key);
  for (const take of takes)
    args.push(Math.round(1e6 / take.rps), take.burst, take.cost);
  const [allowed, index, remaining, resetMicros, retryMicros] =
    await client.gatewayLimit(takes.length, ...args);
  return {
    allowed: allowed === 1,
    index: index - 1,
    remaining,
    resetSeconds: Math.ceil(resetMicros / 1e6),
    retryAfterSeconds:
      allowed === 1 ? 0 : Math.max(1, Math.ceil(retryMicros / 1e6)),
  };
}
