/** undici's Pool module, imported on its own by src/proxy/undici-pool.ts. */
declare module 'undici/lib/dispatcher/pool.js' {
  import type { Pool } from 'undici';
  const PoolModule: typeof Pool;
  export default PoolModule;
}
