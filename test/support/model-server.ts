// The simulated model server lives in bench/ (the overload bench runs it as a
// process); tests start it in-process through this typed re-export.
export {
  startModelServer,
  type ModelServer,
  type ModelServerStats,
} from '../../bench/model-server.mjs';
