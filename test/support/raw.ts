import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  /** Everything the server wrote, as latin1 text. */
  text: string;
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (within the wait). */
  closed: boolean;
}

/**
 * Writes bytes exactly as given on a fresh TCP connection (no HTTP library
 * would send malformed input) and collects what comes back until the server
 * closes or `waitMs` passes.
 */
export function rawExchange(
  baseUrl: string,
  payload: string | Buffer,
  waitMs = 1000,
): Promise<RawAnswer> {
  const { port } = new URL(baseUrl);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseAnswer(Buffer.concat(chunks).toString('latin1'), closed));
    };
    const timer = setTimeout(finish, waitMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.write(payload);
  });
}

export function parseAnswer(text: string, closed: boolean): RawAnswer {
  const end = text.indexOf('\r\n\r\n');
  const head = end === -1 ? text : text.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0)
      headers[line.slice(0, colon).toLowerCase()] = line
        .slice(colon + 1)
        .trim();
  }
  return {
    text,
    status: Number(statusLine.split(' ')[1] ?? 0),
    headers,
    body: end === -1 ? '' : text.slice(end + 4),
    closed,
  };
}

/** Opens a TCP connection and resolves once connected. */
export function openSocket(baseUrl: string): Promise<Socket> {
  const { port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A connection that keeps everything the server writes, until it closes. */
export interface Collecting {
  socket: Socket;
  /** All bytes received so far, as latin1 text. */
  text: () => string;
  closed: Promise<unknown>;
}

/** Opens a connection that collects what comes back (errors ignored). */
export async function openCollecting(baseUrl: string): Promise<Collecting> {
  const socket = await openSocket(baseUrl);
  socket.on('error', () => undefined);
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  // Not events.once: an 'error' (EPIPE after the server closed) must not reject it.
  const closed = new Promise((resolve) => socket.once('close', resolve));
  return { socket, text: () => text, closed };
}

/**
 * Reads one sample from Prometheus text: the value of `series` (its name with
 * any labels, as written), `absent` when there is none (NaN where a missing
 * series must fail the check rather than read as 0).
 */
export function sample(metrics: string, series: string, absent = 0): number {
  for (const line of metrics.split('\n')) {
    if (line.startsWith(series + ' '))
      return Number(line.slice(series.length + 1));
  }
  return absent;
}
