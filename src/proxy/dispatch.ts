import { dispatchBody } from '../common/request-body.js';
import type { Backend } from './backend.js';
import type { BackendCall } from './backend-call.js';
import type { ForwardRequest } from './forwarding.js';

/** Sends `outgoing` to `backend` on its keep-alive connections, answered to `call`. */
export function dispatch(
  backend: Backend,
  outgoing: ForwardRequest,
  call: BackendCall,
): void {
  backend.client.pool.dispatch(
    {
      path: backend.client.prefix + outgoing.pathAndQuery,
      method: outgoing.method,
      headers: outgoing.headers,
      body: dispatchBody(outgoing.body),
    },
    call,
  );
}
