import type { Result } from 'ioredis';
import type { RedisClient } from '../redis/redis.service.js';
import type { LimitResult } from './rate-limit.types.js';

/**
 * GCRA (the token bucket as one timestamp): KEYS[1] holds the bucket's
 * theoretical arrival time in microseconds of Redis' own clock, so replicas'
 * clocks never matter. ARGV: microseconds per token, burst. One round trip,
 * atomic; the key expires when the bucket would be full, so idle clients cost
 * nothing. Returns {allowed, remaining, reset µs, retry-after µs}.
 */
const GCRA = `
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - burst * interval
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval), next_tat - now, 0}
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    gatewayGcra(
      key: string,
      intervalMicros: number,
      burst: number,
    ): Result<[number, number, number, number], Context>;
  }
}

/** Registers the script on the client: ioredis sends EVALSHA, and EVAL once after a NOSCRIPT (a restarted Redis). */
export function defineGcra(client: RedisClient): void {
  client.defineCommand('gatewayGcra', { numberOfKeys: 1, lua: GCRA });
}

export async function takeGcra(
  client: RedisClient,
  key: string,
  rps: number,
  burst: number,
): Promise<LimitResult> {
  const [allowed, remaining, resetMicros, retryMicros] =
    await client.gatewayGcra(key, Math.round(1e6 / rps), burst);
  return {
    allowed: allowed === 1,
    remaining,
    resetSeconds: Math.ceil(resetMicros / 1e6),
    retryAfterSeconds:
      allowed === 1 ? 0 : Math.max(1, Math.ceil(retryMicros / 1e6)),
  };
}
