/** Injection token of the shared ioredis client (`RedisClient | null`, null when no Redis is configured). */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');

/**
 * Injection token of the ioredis module, loaded only when a Redis is
 * configured (null otherwise): a gateway without Redis neither parses nor
 * holds it.
 */
export const IOREDIS = Symbol('IOREDIS');
export type IoRedis = typeof import('ioredis');
