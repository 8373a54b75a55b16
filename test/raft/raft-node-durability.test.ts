// The driver's half of the Ready contract: a Ready's messages leave only after its write is
// durable (raft-core.ts header, step 1 before step 2). A storage wrapper holds each write until
// the test releases it; a recording transport shows what was sent meanwhile. The clock is manual,
// so nothing ticks unless the test says so.
import { describe, expect, it } from 'vitest';
import {
  MemoryRaftStorage,
  RaftNode,
  type DurableState,
  type Message,
  type PersistWrite,
  type RaftStorage,
  type RaftTransport,
  type Snapshot,
} from '../../src/raft/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';

/** Holds every persist() until release(); records the order of events. */
class HoldingStorage implements RaftStorage {
  private held: { write: PersistWrite; release: () => void }[] = [];
  private onWrite: (() => void) | undefined;

  constructor(
    private readonly inner: RaftStorage,
    private readonly events: string[],
  ) {}

  load(): Promise<DurableState> {
    return this.inner.load();
  }

  persist(write: PersistWrite): Promise<void> {
    this.events.push('persist-start');
    return new Promise<void>((resolve, reject) => {
      this.held.push({
        write,
        release: () => {
          this.inner.persist(write).then(() => {
            this.events.push('persist-done');
            resolve();
          }, reject);
        },
      });
      this.onWrite?.();
    });
  }

  compact(snapshot: Snapshot): Promise<void> {
    return this.inner.compact(snapshot);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Resolves with the held write once persist() has been called. */
  async nextHeld(): Promise<PersistWrite> {
    if (this.held.length === 0) await new Promise<void>((resolve) => (this.onWrite = resolve));
    this.onWrite = undefined;
    return this.held[0].write;
  }

  release(): void {
    const next = this.held.shift();
    if (next === undefined) throw new Error('no write is held');
    next.release();
  }
}

class RecordingTransport implements RaftTransport {
  readonly sent: Message[] = [];
  private waiters: (() => void)[] = [];

  constructor(private readonly events: string[]) {}

  send(message: Message): void {
    this.events.push(`send ${message.type}`);
    this.sent.push(message);
    for (const w of this.waiters.splice(0)) w();
  }

  listen(): void {}

  async close(): Promise<void> {}

  async until(predicate: () => boolean): Promise<void> {
    while (!predicate()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

async function openNode(voters: number[]) {
  const events: string[] = [];
  const storage = new HoldingStorage(new MemoryRaftStorage(), events);
  const transport = new RecordingTransport(events);
  const node = await RaftNode.open({
    nodeId: 1,
    bootstrap: { voters, learners: [] },
    tickMs: 10,
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 2,
    preVote: false,
    storage,
    transport,
    clock: new ManualClock(),
    random: () => 0,
    logger: silentLogger(),
  });
  await node.start();
  return { node, storage, transport, events };
}

describe('RaftNode durability', () => {
  it('sends vote requests only after the new term and its vote are durable (§5.2, Figure 2)', async () => {
    const { node, storage, transport, events } = await openNode([1, 2, 3]);
    node.campaign();
    const write = await storage.nextHeld();
    expect(write.hardState).toEqual({ term: 1, votedFor: 1, commit: 0 });
    // The write is held: nothing goes out, however many turns the event loop takes.
    for (let turn = 0; turn < 5; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(transport.sent).toEqual([]);
    storage.release();
    await transport.until(() => transport.sent.filter((m) => m.type === 'vote').length === 2);
    expect(events.slice(0, 4)).toEqual(['persist-start', 'persist-done', 'send vote', 'send vote']);
    await node.close();
  });

  it('acknowledges appended entries only after they are durable (§5.3)', async () => {
    const { node, storage, transport, events } = await openNode([1, 2]);
    const payload = { kind: 'normal', data: new TextEncoder().encode('x') } as const;
    node.receive({ type: 'append', from: 2, to: 1, term: 1, prevIndex: 0, prevTerm: 0, entries: [{ index: 1, term: 1, payload }], commit: 0 });
    const write = await storage.nextHeld();
    expect(write.entries.map((e) => e.index)).toEqual([1]);
    for (let turn = 0; turn < 5; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(transport.sent).toEqual([]);
    storage.release();
    await transport.until(() => transport.sent.some((m) => m.type === 'append-response'));
    const ack = transport.sent.find((m) => m.type === 'append-response');
    expect(ack).toMatchObject({ to: 2, reject: false, index: 1 });
    expect(events.indexOf('persist-done')).toBeLessThan(events.indexOf('send append-response'));
    await node.close();
  });
});
