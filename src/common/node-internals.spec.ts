import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { currentResponse, ParserHook } from './node-internals.js';

// Fails the day Node moves an internal the gateway uses (node-internals.ts).
// CI runs this file on Node 20 and on Node 24, the image's runtime.
describe(`Node internals (Node ${process.version})`, () => {
  let server: Server;
  let port: number;

  beforeEach(async () => {
    server = createServer((_req, res) => res.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  function send(bytes: string): Socket {
    const client = connect(port, '127.0.0.1');
    client.write(bytes);
    return client;
  }

  it('currentResponse: the answer a connection is writing', async () => {
    const seen = new Promise<[ServerResponse | undefined, ServerResponse]>(
      (resolve) =>
        server.prependListener('request', (req, res) =>
          resolve([currentResponse(req.socket), res]),
        ),
    );
    const client = send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const [found, res] = await seen;
    expect(found).toBe(res);
    client.destroy();
  });

  it("ParserHook: the parser's execute hook, called with each read's bytes", async () => {
    const reads: string[] = [];
    let hook: ParserHook | undefined;
    const watch = (ret: unknown) => {
      reads.push(hook!.currentBuffer().toString('latin1'));
      return hook!.original(ret);
    };
    const connected = new Promise<Socket>((resolve) =>
      // After Node's own listener, which gives the socket its parser.
      server.on('connection', (socket: Socket) => {
        expect(ParserHook.hasParser(socket)).toBe(true);
        hook = ParserHook.of(socket);
        hook?.install(watch);
        resolve(socket);
      }),
    );
    const request = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
    const client = send(request);
    const socket = await connected;
    expect(hook).toBeDefined();
    expect(hook!.current).toBe(true);
    expect(hook!.installed(watch)).toBe(true);
    await once(client, 'data');
    expect(reads).toEqual([request]);
    hook!.restore(watch);
    expect(hook!.installed(hook!.original)).toBe(true);
    // The slot found on one connection is the one the next is tried at.
    expect(ParserHook.of(socket, hook!.slot)?.slot).toBe(hook!.slot);
    client.destroy();
  });
});
