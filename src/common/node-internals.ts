import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

// The one door to Node's HTTP internals (none is in @types/node). Each is
// checked by node-internals.spec.ts on Node 20 and 24, which fails the day
// Node moves one; every caller also works, less well, without them.

/** Node's link from a server connection to the answer it is writing now. */
export function currentResponse(socket: Duplex): ServerResponse | undefined {
  return (
    (socket as { _httpMessage?: ServerResponse | null })._httpMessage ??
    undefined
  );
}

/** Called by the parser (the C++ binding) after each read it has parsed. */
export type ExecuteHook = (ret: unknown) => unknown;

interface HttpParser {
  [slot: number]: unknown;
  socket: Socket | null;
  /** During an execute hook: a copy of the bytes of that read. */
  getCurrentBuffer(): Buffer;
}

const EXECUTE_HOOK_NAME = 'bound onParserExecute';
const SLOTS_SEARCHED = 16;

function isExecuteHook(value: unknown): value is ExecuteHook {
  return typeof value === 'function' && value.name === EXECUTE_HOOK_NAME;
}

/**
 * The connection's parser and the numeric slot that holds its execute hook
 * (the server's `onParserExecute`, bound per connection, found by its name).
 * `slot` is the one found on an earlier connection, tried first.
 */
export class ParserHook {
  readonly original: ExecuteHook;

  private constructor(
    private readonly socket: Socket,
    private readonly parser: HttpParser,
    readonly slot: number,
  ) {
    this.original = parser[slot] as ExecuteHook;
  }

  /** Undefined when the connection has no parser hook to take (another Node). */
  static of(socket: Socket, slot = -1): ParserHook | undefined {
    const parser = (socket as { parser?: HttpParser | null }).parser;
    if (!parser) return undefined;
    if (slot < 0 || !isExecuteHook(parser[slot])) {
      slot = -1;
      for (let i = 0; i < SLOTS_SEARCHED && slot < 0; i++)
        if (isExecuteHook(parser[i])) slot = i;
    }
    return slot < 0 ? undefined : new ParserHook(socket, parser, slot);
  }

  /** Whether the socket has a parser at all (Node's server sockets do). */
  static hasParser(socket: Socket): boolean {
    return Boolean((socket as { parser?: HttpParser | null }).parser);
  }

  /** The parser still serves this connection (parsers are pooled and reused). */
  get current(): boolean {
    const owner = (this.socket as { parser?: HttpParser | null }).parser;
    return owner === this.parser && this.parser.socket === this.socket;
  }

  installed(hook: ExecuteHook): boolean {
    return this.parser[this.slot] === hook;
  }

  install(hook: ExecuteHook): void {
    if (this.parser[this.slot] === this.original) this.parser[this.slot] = hook;
  }

  restore(hook: ExecuteHook): void {
    if (this.parser[this.slot] === hook) this.parser[this.slot] = this.original;
  }

  /** The bytes of the read being parsed (only inside the execute hook). */
  currentBuffer(): Buffer {
    return this.parser.getCurrentBuffer();
  }
}

/**
 * Node's `server.close()` destroys every keep-alive connection whose parser
 * is idle at that instant (and Fastify's close does the same through
 * `closeIdleConnections`): a connection whose next request is still on the
 * wire is reset, and that request lost (Node 20, back-to-back keep-alive
 * clients). After this, closing leaves idle connections open; the drain
 * (ShutdownService) closes them itself, once they have stayed idle.
 */
export function leaveIdleConnectionsOnClose(server: Server): void {
  server.closeIdleConnections = () => undefined;
}
