// FaultProxy and ProxyMesh over real sockets on 127.0.0.1 (OS-assigned ports): forwarding,
// 'reset' and 'blackhole' cuts, heal, delay, a target that comes up late, and close() leaving
// no TCP handles behind. Every wait has its own bound well under the vitest timeout.
import { afterEach, describe, expect, it } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FaultProxy, ProxyMesh } from '../../src/harness/fault-proxy.js';

/** How long "no answer" is watched for. */
const SILENCE_MS = 200;
/** Bound for anything that should happen promptly. */
const PROMPT_MS = 5_000;

interface TestServer {
  address: string;
  port: number;
  /** Bytes the server has received, over all connections. */
  received: () => number;
  close: () => Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A server that answers every chunk with prefix + chunk (an echo when prefix is empty). */
async function startServer(prefix = '', port = 0): Promise<TestServer> {
  const sockets = new Set<Socket>();
  let received = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      socket.write(prefix === '' ? chunk : Buffer.concat([Buffer.from(prefix), chunk]));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('no address');
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }));
  cleanups.push(close);
  return { address: `127.0.0.1:${bound.port}`, port: bound.port, received: () => received, close };
}

async function startProxy(target: string): Promise<FaultProxy> {
  const proxy = await FaultProxy.start({ target });
  cleanups.push(() => proxy.close());
  return proxy;
}

/** A client socket that records what it reads and whether it closed. */
interface Client {
  socket: Socket;
  data: () => string;
  closed: Promise<void>;
  /** Resolves with all data read once it holds `expected`; rejects after timeoutMs. */
  waitFor: (expected: string, timeoutMs?: number) => Promise<string>;
}

async function open(address: string): Promise<Client> {
  const [host, port] = address.split(':');
  const socket = connect({ host, port: Number(port) });
  socket.on('error', () => undefined);
  cleanups.push(() => void socket.destroy());
  const chunks: Buffer[] = [];
  const data = () => Buffer.concat(chunks).toString();
  const listeners = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    for (const listener of listeners) listener();
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const waitFor = (expected: string, timeoutMs = PROMPT_MS) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        if (!data().includes(expected)) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve(data());
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`'${expected}' not read within ${timeoutMs} ms (read so far: '${data().slice(-200)}')`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  return { socket, data, closed, waitFor };
}

/** Rejects if `promise` does not settle within ms. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Connects through `address`, sends `message` and returns the reply (or throws). */
async function roundTrip(address: string, message: string, reply = message): Promise<string> {
  const client = await open(address);
  client.socket.write(message);
  const got = await client.waitFor(reply);
  client.socket.destroy();
  return got;
}

/** True if a connection through `address` gets no reply to `message` within SILENCE_MS. */
async function unanswered(address: string, message: string): Promise<boolean> {
  const client = await open(address);
  client.socket.write(message);
  await sleep(SILENCE_MS);
  const silent = client.data() === '';
  client.socket.destroy();
  return silent;
}

/**
 * Connects through a proxy cut with 'reset' and expects the connection to be closed without a
 * reply. The RST may reach the client before or after its connect completes, so both a failed
 * connect and a close after connecting count.
 */
async function expectReset(address: string, message: string): Promise<void> {
  const [host, port] = address.split(':');
  const socket = connect({ host, port: Number(port) });
  let replied = false;
  socket.on('error', () => undefined);
  socket.on('data', () => (replied = true));
  socket.on('connect', () => socket.write(message));
  cleanups.push(() => void socket.destroy());
  await within(new Promise((resolve) => socket.once('close', resolve)), PROMPT_MS, `close of a connection through ${address}`);
  expect(replied).toBe(false);
}

function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap' || name === 'TCPServerWrap').length;
}

describe('FaultProxy', () => {
  it('forwards bytes both ways and counts them', async () => {
    const echo = await startServer();
    const proxy = await startProxy(echo.address);
    expect(proxy.address).toBe(`127.0.0.1:${proxy.port}`);

    const client = await open(proxy.address);
    client.socket.write('hello');
    await client.waitFor('hello');
    // A payload much larger than socket buffers, so backpressure paths run.
    const big = 'x'.repeat(2 * 1024 * 1024 - 3) + 'end';
    client.socket.write(big);
    const got = await client.waitFor('xend');
    expect(got).toBe('hello' + big);
    expect(proxy.stats()).toEqual({ accepted: 1, active: 1, bytesToTarget: 5 + big.length, bytesFromTarget: 5 + big.length });

    client.socket.end();
    await within(client.closed, PROMPT_MS, 'client close');
    await pollUntil(() => proxy.stats().active === 0, 'pair removal');
  });

  it("'reset' closes open connections and every new one; heal restores forwarding", async () => {
    const echo = await startServer();
    const proxy = await startProxy(echo.address);
    const client = await open(proxy.address);
    client.socket.write('a');
    await client.waitFor('a');

    proxy.cut('reset');
    expect(proxy.mode).toBe('reset');
    await within(client.closed, PROMPT_MS, 'close of the open connection');
    expect(proxy.stats().active).toBe(0);

    // A new connection is accepted by the kernel, then reset at once by the proxy.
    await expectReset(proxy.address, 'b');
    expect(proxy.stats().accepted).toBe(2);

    proxy.heal();
    expect(await roundTrip(proxy.address, 'c')).toBe('c');
  });

  it("'blackhole' keeps sockets open but silent; heal drops held connections and new ones work", async () => {
    const echo = await startServer();
    const proxy = await startProxy(echo.address);
    const open1 = await open(proxy.address);
    open1.socket.write('before');
    await open1.waitFor('before');
    const receivedBeforeCut = echo.received();

    proxy.cut(); // blackhole is the default
    expect(proxy.mode).toBe('blackhole');
    open1.socket.write('lost');
    const held = await open(proxy.address); // accepted, never connected to the target
    held.socket.write('also lost');
    await sleep(SILENCE_MS);
    expect(open1.data()).toBe('before');
    expect(held.data()).toBe('');
    expect(echo.received()).toBe(receivedBeforeCut);
    expect(open1.socket.destroyed).toBe(false);
    expect(held.socket.destroyed).toBe(false);
    expect(proxy.stats().active).toBe(2);

    proxy.heal();
    await within(Promise.all([open1.closed, held.closed]), PROMPT_MS, 'close of held connections on heal');
    expect(await roundTrip(proxy.address, 'after')).toBe('after');
    expect(echo.received()).toBe(receivedBeforeCut + 'after'.length);
  });

  it('delays each direction and keeps order, also across a half-close', async () => {
    const echo = await startServer();
    const proxy = await startProxy(echo.address);
    const delayMs = 60;
    proxy.setDelay(delayMs);

    const client = await open(proxy.address);
    const started = performance.now();
    const parts = Array.from({ length: 20 }, (_, i) => `<${i}>`);
    for (const part of parts) {
      client.socket.write(part);
      await sleep(2);
    }
    const got = await client.waitFor('<19>');
    // One delay each way; 10 ms slack for timer granularity.
    expect(performance.now() - started).toBeGreaterThanOrEqual(2 * delayMs - 10);
    expect(got).toBe(parts.join(''));

    // Bytes queued when the client half-closes still arrive before the FIN.
    const big = 'y'.repeat(3 * 1024 * 1024 - 4) + 'tail';
    client.socket.end(big);
    const ended = new Promise<void>((resolve) => client.socket.once('end', () => resolve()));
    await within(ended, PROMPT_MS * 2, 'end of the echoed stream');
    expect(client.data()).toBe(parts.join('') + big);

    proxy.setDelay(0);
    expect(await roundTrip(proxy.address, 'fast')).toBe('fast');
    expect(() => proxy.setDelay(-1)).toThrow();
  });

  it('drops clients while the target is down and forwards once it is up', async () => {
    // Find a free port, then leave it unbound.
    const placeholder = await startServer();
    const port = placeholder.port;
    await placeholder.close();

    const proxy = await startProxy(`127.0.0.1:${port}`);
    const early = await open(proxy.address);
    early.socket.write('anyone?');
    await within(early.closed, PROMPT_MS, 'close of a client whose target refused');
    expect(proxy.stats().active).toBe(0);

    const echo = await startServer('', port);
    expect(await roundTrip(proxy.address, 'now')).toBe('now');
    expect(echo.received()).toBe('now'.length);
    expect(proxy.stats().accepted).toBe(2);
  });

  it('close() ends connections, stops listening, is idempotent and leaves no TCP handles', async () => {
    const before = tcpHandles();
    const echo = await startServer();
    const proxy = await FaultProxy.start({ target: echo.address, name: 'close-test' });
    const forwarding = await open(proxy.address);
    forwarding.socket.write('x');
    await forwarding.waitFor('x');
    proxy.cut('blackhole');
    const held = await open(proxy.address);
    proxy.setDelay(10);

    await within(proxy.close(), PROMPT_MS, 'proxy close');
    await proxy.close();
    await within(Promise.all([forwarding.closed, held.closed]), PROMPT_MS, 'client close');
    await expect(open(proxy.address)).rejects.toThrow(/ECONNREFUSED/);
    await echo.close();
    await pollUntil(() => tcpHandles() <= before, 'release of TCP handles');
  });
});

describe('ProxyMesh', () => {
  it('gives each node overrides to its peers and cuts one direction at a time', async () => {
    const servers = new Map<number, TestServer>();
    for (const id of [1, 2, 3]) servers.set(id, await startServer(`${id}:`));
    const mesh = await ProxyMesh.start(new Map([...servers].map(([id, s]) => [id, s.address])));
    cleanups.push(() => mesh.close());

    expect(mesh.overridesFor(1)).toMatch(/^2@127\.0\.0\.1:\d+,3@127\.0\.0\.1:\d+$/);
    expect(mesh.overridesFor(1)).toBe(`2@${mesh.link(1, 2).address},3@${mesh.link(1, 3).address}`);
    expect(mesh.overridesFor(2)).toBe(`1@${mesh.link(2, 1).address},3@${mesh.link(2, 3).address}`);
    expect(() => mesh.link(1, 1)).toThrow();
    expect(() => mesh.overridesFor(4)).toThrow();

    const via = (from: number, to: number) => mesh.link(from, to).address;
    expect(await roundTrip(via(1, 2), 'hi', '2:hi')).toBe('2:hi');
    expect(await roundTrip(via(2, 1), 'hi', '1:hi')).toBe('1:hi');

    mesh.cutLink(1, 2);
    expect(await unanswered(via(1, 2), 'hi')).toBe(true);
    expect(await roundTrip(via(2, 1), 'hi', '1:hi')).toBe('1:hi');
    expect(await roundTrip(via(1, 3), 'hi', '3:hi')).toBe('3:hi');
    mesh.healLink(1, 2);
    expect(await roundTrip(via(1, 2), 'hi', '2:hi')).toBe('2:hi');

    mesh.isolate(3, 'reset');
    for (const [from, to] of [[1, 3], [3, 1], [2, 3], [3, 2]]) expect(mesh.link(from, to).mode).toBe('reset');
    expect(await roundTrip(via(1, 2), 'hi', '2:hi')).toBe('2:hi');
    await expectReset(via(3, 1), 'hi');
    mesh.heal();
    expect(await roundTrip(via(3, 1), 'hi', '1:hi')).toBe('1:hi');
    expect(await roundTrip(via(2, 3), 'hi', '3:hi')).toBe('3:hi');
  });
});

/** Resolves once `condition` holds, checking every 10 ms; rejects after timeoutMs. */
async function pollUntil(condition: () => boolean, what: string, timeoutMs = PROMPT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(10);
  }
}
