/** Injection token of the shared ioredis client (`RedisClient | null`, null when no Redis is configured). */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');
