import type { Pool as UndiciPool } from 'undici';
// undici's index loads all of undici (fetch, WebSocket, caches, mocks, and
// with them Node's own fetch and web streams): ~18 MB resident on Node 24
// that the proxy never uses. Its Pool alone is the client it needs.
import PoolModule from 'undici/lib/dispatcher/pool.js';

/** undici's `Pool` (one per backend origin), loaded without the rest of undici. */
export const Pool: typeof UndiciPool = PoolModule;
export type Pool = UndiciPool;
