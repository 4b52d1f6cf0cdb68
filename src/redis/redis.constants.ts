/** Injection token of the shared ioredis client (`Redis | null`, null without REDIS_URL). */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');
