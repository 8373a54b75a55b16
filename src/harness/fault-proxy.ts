// A fault-injecting TCP proxy for process-level fault tests: it sits on one link between two
// Kavka nodes on 127.0.0.1 (a node is told to reach a peer through it with
// `peer.address.overrides`) and can cut the link, as a reset or as a silent partition, heal it,
// or add latency. ProxyMesh puts one proxy on every directed link of a small cluster. Used by the
// process chaos tests (DESIGN.md section 8, item 4); it uses only node:net and timers.
//
// Concurrency model: everything runs on the event loop of the test process; there are no
// threads and no locks. Each accepted client connection forms a pair with one connection to the
// target, and each pair has two one-way pumps (client→target, target→client). A pump forwards a
// chunk at once, or, with a delay, queues it with its due time and writes it from a timer, so
// order is kept. Memory is bounded per pump: the source socket is paused while the queue holds
// more than MAX_QUEUED_BYTES or the destination asks to drain, and resumed after. Mode changes
// (cut, heal, setDelay) apply synchronously to every existing pair and to every later connection.
import { createServer, connect, type Server, type Socket } from 'node:net';

/** Bytes a pump may hold queued (delay mode) before it pauses its source socket. */
const MAX_QUEUED_BYTES = 1024 * 1024;

/** How a cut link fails: 'reset' closes connections at once, 'blackhole' imitates a partition. */
export type CutMode = 'blackhole' | 'reset';

/** The proxy's state: forwarding, or cut in one of the two modes. */
export type ProxyMode = 'forward' | CutMode;

export interface FaultProxyOptions {
  /** Where connections are forwarded, 'host:port'. It need not be listening yet. */
  target: string;
  /** Default '127.0.0.1'. */
  listenHost?: string;
  /** Default 0 (the OS picks a free port). */
  listenPort?: number;
  /** A label for error messages and test output, e.g. '1->2'. */
  name?: string;
}

export interface FaultProxyStats {
  /** Client connections accepted since start (including those refused by a cut). */
  accepted: number;
  /** Connection pairs currently open (forwarding or held by a blackhole). */
  active: number;
  /** Bytes written to target connections. */
  bytesToTarget: number;
  /** Bytes written back to clients. */
  bytesFromTarget: number;
}

/** Splits 'host:port' (host may be '[v6]'); throws on a malformed address. */
function parseHostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`not a host:port address: '${address}'`);
  return { host: address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port };
}

/** Destroys a socket, sending RST instead of FIN when reset is set and the socket is connected. */
function destroySocket(socket: Socket, reset: boolean): void {
  if (socket.destroyed) return;
  if (reset && !socket.connecting) socket.resetAndDestroy();
  else socket.destroy();
}

/** One direction of a pair: reads from src, writes to dst, with optional delay and backpressure. */
class Pump {
  private readonly queue: { chunk: Buffer; due: number }[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private paused = false;
  private stopped = false;
  /** The source sent FIN; dst is ended once the queue is flushed. */
  private srcEnded = false;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly delayMs: () => number,
    private readonly count: (bytes: number) => void,
  ) {
    src.on('data', (chunk: Buffer) => this.onData(chunk));
    src.on('end', () => {
      this.srcEnded = true;
      this.maybeEnd();
    });
  }

  /** Stops forwarding for good: drops queued bytes and lets src flow so it is read and discarded. */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.paused) {
      this.paused = false;
      this.src.resume();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.stopped || this.dst.destroyed) return;
    const delay = this.delayMs();
    if (delay === 0 && this.queue.length === 0) this.write(chunk);
    else {
      this.queue.push({ chunk, due: Date.now() + delay });
      this.queuedBytes += chunk.length;
      this.schedule();
    }
    this.updatePause();
  }

  private write(chunk: Buffer): void {
    if (this.dst.destroyed || this.dst.writableEnded) return;
    this.count(chunk.length);
    if (this.dst.write(chunk) || this.waitingDrain) return;
    this.waitingDrain = true;
    this.dst.once('drain', () => {
      this.waitingDrain = false;
      this.updatePause();
    });
  }

  private schedule(): void {
    if (this.timer !== undefined || this.queue.length === 0) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, this.queue[0].due - Date.now()));
  }

  private flush(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0].due <= now) {
      const { chunk } = this.queue.shift() as { chunk: Buffer; due: number };
      this.queuedBytes -= chunk.length;
      this.write(chunk);
    }
    this.schedule();
    this.updatePause();
    this.maybeEnd();
  }

  private updatePause(): void {
    const shouldPause = !this.stopped && (this.waitingDrain || this.queuedBytes > MAX_QUEUED_BYTES);
    if (shouldPause === this.paused) return;
    this.paused = shouldPause;
    if (shouldPause) this.src.pause();
    else this.src.resume();
  }

  private maybeEnd(): void {
    if (this.srcEnded && !this.stopped && this.queue.length === 0 && !this.dst.destroyed) this.dst.end();
  }
}

/** A client connection, its target connection (once dialled) and the two pumps between them. */
interface Pair {
  client: Socket;
  target: Socket | undefined;
  toTarget: Pump | undefined;
  fromTarget: Pump | undefined;
  /** Caught by a blackhole: bytes are discarded and the pair is destroyed on heal. */
  held: boolean;
}

/** A TCP proxy in front of one target address, with link faults on demand. */
export class FaultProxy {
  /** 'host:port' the proxy listens on; give this to the client instead of the target. */
  readonly address: string;
  readonly port: number;
  readonly name: string;
  private currentMode: ProxyMode = 'forward';
  private delay = 0;
  private readonly pairs = new Set<Pair>();
  private readonly counters: Omit<FaultProxyStats, 'active'> = { accepted: 0, bytesToTarget: 0, bytesFromTarget: 0 };
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    private readonly target: { host: string; port: number },
    host: string,
    port: number,
    name: string,
  ) {
    this.port = port;
    this.address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.name = name;
    server.on('connection', (socket) => this.accept(socket));
    // A listening server only errors on accept failures (e.g. EMFILE); the next accept may work.
    server.on('error', () => undefined);
  }

  /** Binds the listener; the target is dialled per connection, so it may come up later. */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const target = parseHostPort(options.target);
    const host = options.listenHost ?? '127.0.0.1';
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const bound = server.address();
    if (bound === null || typeof bound === 'string') throw new Error('proxy listener has no TCP address');
    return new FaultProxy(server, target, host, bound.port, options.name ?? `proxy->${options.target}`);
  }

  /** 'forward', 'blackhole' or 'reset'. */
  get mode(): ProxyMode {
    return this.currentMode;
  }

  /**
   * Cuts the link. 'reset': every open pair is destroyed with RST and new connections are
   * accepted and reset at once. 'blackhole': sockets stay open but bytes (and FINs) in both
   * directions are discarded, and new connections are held without dialling the target, so
   * peers see hangs and timeouts rather than errors.
   */
  cut(mode: CutMode = 'blackhole'): void {
    if (this.closing) return;
    this.currentMode = mode;
    for (const pair of [...this.pairs]) {
      if (mode === 'reset') this.destroyPair(pair, true);
      else this.hold(pair);
    }
  }

  /** Back to forwarding. Pairs held by a blackhole lost bytes, so they are destroyed now. */
  heal(): void {
    if (this.closing) return;
    this.currentMode = 'forward';
    for (const pair of [...this.pairs]) if (pair.held) this.destroyPair(pair, false);
  }

  /** Latency added to every chunk in each direction (order kept); applies to chunks read from now on. */
  setDelay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`${this.name}: delay must be a finite number >= 0, got ${ms}`);
    this.delay = ms;
  }

  stats(): FaultProxyStats {
    return { ...this.counters, active: this.pairs.size };
  }

  /** Destroys every connection and closes the listener. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const pair of [...this.pairs]) this.destroyPair(pair, false);
      this.server.close(() => resolve());
    });
    return this.closing;
  }

  private accept(client: Socket): void {
    this.counters.accepted++;
    client.on('error', () => undefined); // errors end in 'close', handled per pair below
    if (this.closing || this.currentMode === 'reset') {
      destroySocket(client, true);
      return;
    }
    client.setNoDelay(true);
    const pair: Pair = { client, target: undefined, toTarget: undefined, fromTarget: undefined, held: false };
    this.pairs.add(pair);
    client.on('close', (hadError) => this.onSocketClose(pair, client, hadError));
    if (this.currentMode === 'blackhole') this.hold(pair);
    else this.dial(pair);
  }

  /** Connects a pair to the target; a refused dial destroys the client side (it may retry later). */
  private dial(pair: Pair): void {
    const target = connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    pair.target = target;
    target.on('error', () => undefined);
    target.on('close', (hadError) => this.onSocketClose(pair, target, hadError));
    target.once('connect', () => {
      if (pair.held) {
        target.resume(); // discard whatever the target sends until heal destroys the pair
        return;
      }
      target.setNoDelay(true);
      const delayMs = () => this.delay;
      pair.toTarget = new Pump(pair.client, target, delayMs, (n) => (this.counters.bytesToTarget += n));
      pair.fromTarget = new Pump(target, pair.client, delayMs, (n) => (this.counters.bytesFromTarget += n));
    });
  }

  /** Puts a pair under the blackhole: nothing more crosses, both sockets are read and discarded. */
  private hold(pair: Pair): void {
    pair.held = true;
    pair.toTarget?.stop();
    pair.fromTarget?.stop();
    pair.client.resume();
    if (pair.target && !pair.target.connecting) pair.target.resume();
  }

  private onSocketClose(pair: Pair, socket: Socket, hadError: boolean): void {
    if (!this.pairs.has(pair)) return;
    const other = socket === pair.client ? pair.target : pair.client;
    const pump = socket === pair.client ? pair.toTarget : pair.fromTarget;
    // An error (a reset, a refused dial) or a close before the pumps exist: the other side goes too.
    // Under a blackhole the close is hidden from the other side, as a partition would hide it.
    if (!pair.held && (hadError || pump === undefined)) {
      this.destroyPair(pair, false);
      return;
    }
    // A clean close means this socket's FINs went both ways; the other side's pump ends it after
    // flushing what it still holds, and it closes on its own. The pair goes when both are closed.
    if (other === undefined || other.destroyed) this.pairs.delete(pair);
  }

  private destroyPair(pair: Pair, reset: boolean): void {
    this.pairs.delete(pair);
    pair.toTarget?.stop();
    pair.fromTarget?.stop();
    destroySocket(pair.client, reset);
    if (pair.target) destroySocket(pair.target, reset);
  }
}

/** Node id → the address its peers dial (e.g. its INTERNAL listener). */
export type MeshTargets = ReadonlyMap<number, string>;

/**
 * One FaultProxy per directed link from→to between a set of nodes, so each direction can be cut
 * on its own. Start the mesh before the nodes (proxies tolerate targets that are not up yet) and
 * start node `n` with `peer.address.overrides=${mesh.overridesFor(n)}`.
 */
export class ProxyMesh {
  private constructor(
    private readonly targets: MeshTargets,
    private readonly links: ReadonlyMap<string, FaultProxy>,
  ) {}

  static async start(targets: MeshTargets, options: { listenHost?: string } = {}): Promise<ProxyMesh> {
    const links = new Map<string, FaultProxy>();
    try {
      for (const from of targets.keys()) {
        for (const [to, address] of targets) {
          if (to === from) continue;
          const name = `${from}->${to}`;
          links.set(name, await FaultProxy.start({ target: address, listenHost: options.listenHost, name }));
        }
      }
    } catch (err) {
      await Promise.all([...links.values()].map((proxy) => proxy.close()));
      throw err;
    }
    return new ProxyMesh(targets, links);
  }

  /** The proxy carrying connections that node `from` opens to node `to`. */
  link(from: number, to: number): FaultProxy {
    const proxy = this.links.get(`${from}->${to}`);
    if (proxy === undefined) throw new Error(`no link ${from}->${to} in this mesh`);
    return proxy;
  }

  /** `peer.address.overrides` for node `from`: '2@127.0.0.1:30012,3@127.0.0.1:30013'. */
  overridesFor(from: number): string {
    if (!this.targets.has(from)) throw new Error(`node ${from} is not in this mesh`);
    return [...this.targets.keys()]
      .filter((to) => to !== from)
      .map((to) => `${to}@${this.link(from, to).address}`)
      .join(',');
  }

  /** Cuts connections from `from` to `to` only (the reverse link keeps working). */
  cutLink(from: number, to: number, mode: CutMode = 'blackhole'): void {
    this.link(from, to).cut(mode);
  }

  healLink(from: number, to: number): void {
    this.link(from, to).heal();
  }

  /** Cuts both directions of every link touching `node`. */
  isolate(node: number, mode: CutMode = 'blackhole'): void {
    if (!this.targets.has(node)) throw new Error(`node ${node} is not in this mesh`);
    for (const other of this.targets.keys()) {
      if (other === node) continue;
      this.cutLink(node, other, mode);
      this.cutLink(other, node, mode);
    }
  }

  /** Heals every link. */
  heal(): void {
    for (const proxy of this.links.values()) proxy.heal();
  }

  async close(): Promise<void> {
    await Promise.all([...this.links.values()].map((proxy) => proxy.close()));
  }
}
