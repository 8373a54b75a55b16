// The driver's stores and codec: LevelRaftStorage persists a Ready in one fsynced batch and loads
// it back (truncation, snapshots, compaction), refuses another node's directory and corrupt
// values; every Raft message survives the protobuf round trip.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  LevelRaftStorage,
  messageFromProto,
  messageToProto,
  type Entry,
  type Message,
  type Snapshot,
} from '../../src/raft/index.js';
import { entryKey } from '../../src/raft/level-raft-storage.js';
import { loadRaftPackageDefinition, RAFT_SERVICE_NAME } from '../../src/raft/grpc-raft-transport.js';
import type { RaftMessage, RaftMessage__Output } from '../../src/gen/kavka/v1/RaftMessage.js';
import type * as grpc from '@grpc/grpc-js';
import { KavkaError } from '../../src/util/errors.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function entry(index: number, term: number, value = `v${index}`): Entry {
  return { index, term, payload: { kind: 'normal', data: bytes(value) } };
}

describe('LevelRaftStorage', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kavka-raft-store-'));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  async function reopen(): Promise<LevelRaftStorage> {
    return LevelRaftStorage.open({ directory: dir, clusterId: 'c', nodeId: 1 });
  }

  it('writes each Ready as one batch with sync: true', async () => {
    const batch = vi.spyOn(Level.prototype, 'batch');
    const store = await reopen();
    await store.load();
    await store.persist({ hardState: { term: 1, votedFor: 1, commit: 0 }, snapshot: undefined, truncateFrom: undefined, entries: [entry(1, 1), entry(2, 1)] });
    await store.close();
    expect(batch).toHaveBeenCalledTimes(1);
    const [ops, options] = batch.mock.calls[0] as unknown as [unknown[], { sync?: boolean }];
    expect(ops).toHaveLength(3);
    expect(options).toEqual({ sync: true });
  });

  it('loads hard state, snapshot and entries back, after truncation and compaction', async () => {
    let store = await reopen();
    expect(await store.load()).toEqual({ hardState: { term: 0, votedFor: undefined, commit: 0 }, snapshot: undefined, entries: [] });
    await store.persist({ hardState: { term: 2, votedFor: 3, commit: 2 }, snapshot: undefined, truncateFrom: undefined, entries: [1, 2, 3, 4].map((i) => entry(i, 1)) });
    // A follower's conflict: 3 and 4 go, a new 3 of term 2 comes.
    await store.persist({ hardState: undefined, snapshot: undefined, truncateFrom: 3, entries: [entry(3, 2, 'new')] });
    const snapshot: Snapshot = { metadata: { index: 2, term: 1, config: { voters: [1, 2, 3], learners: [4] } }, data: bytes('state@2') };
    await store.compact(snapshot);
    await store.close();

    store = await reopen();
    const durable = await store.load();
    expect(durable.hardState).toEqual({ term: 2, votedFor: 3, commit: 2 });
    expect(durable.snapshot).toEqual(snapshot);
    expect(durable.entries).toEqual([entry(3, 2, 'new')]);

    // A leader's snapshot replaces the whole log.
    const installed: Snapshot = { metadata: { index: 10, term: 3, config: { voters: [1, 2, 3], learners: [] } }, data: bytes('state@10') };
    await store.persist({ hardState: { term: 3, votedFor: undefined, commit: 10 }, snapshot: installed, truncateFrom: undefined, entries: [entry(11, 3)] });
    await store.close();
    store = await reopen();
    const after = await store.load();
    expect(after.snapshot).toEqual(installed);
    expect(after.entries).toEqual([entry(11, 3)]);
    expect(after.hardState).toEqual({ term: 3, votedFor: undefined, commit: 10 });
    await store.close();
  });

  it('keeps noop and config entries', async () => {
    let store = await reopen();
    await store.load();
    const entries: Entry[] = [
      { index: 1, term: 1, payload: { kind: 'noop' } },
      { index: 2, term: 1, payload: { kind: 'config', change: { type: 'add-learner', nodeId: 4 } } },
      { index: 3, term: 1, payload: { kind: 'normal', data: new Uint8Array() } },
    ];
    await store.persist({ hardState: undefined, snapshot: undefined, truncateFrom: undefined, entries });
    await store.close();
    store = await reopen();
    expect((await store.load()).entries).toEqual(entries);
    await store.close();
  });

  it('refuses a directory that belongs to another node', async () => {
    const store = await reopen();
    await store.close();
    const error = await LevelRaftStorage.open({ directory: dir, clusterId: 'c', nodeId: 2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KavkaError);
    expect((error as KavkaError).code).toBe('INVALID_CONFIG');
  });

  it('fails to load a value whose CRC does not match', async () => {
    let store = await reopen();
    await store.load();
    await store.persist({ hardState: undefined, snapshot: undefined, truncateFrom: undefined, entries: [entry(1, 1)] });
    await store.close();
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    const value = (await db.get(entryKey(1))) as Uint8Array;
    const damaged = Uint8Array.from(value);
    damaged[damaged.length - 1] ^= 0xff;
    await db.put(entryKey(1), damaged);
    await db.close();
    store = await reopen();
    const error = await store.load().catch((e: unknown) => e);
    expect((error as KavkaError).code).toBe('CORRUPT_MESSAGE');
    await store.close();
  });
});

describe('Raft message codec', () => {
  const snapshot: Snapshot = { metadata: { index: 7, term: 2, config: { voters: [1, 2, 3], learners: [4] } }, data: bytes('image') };
  const messages: Message[] = [
    { type: 'append', from: 1, to: 2, term: 3, prevIndex: 4, prevTerm: 2, commit: 4, entries: [entry(5, 3), { index: 6, term: 3, payload: { kind: 'noop' } }, { index: 7, term: 3, payload: { kind: 'config', change: { type: 'remove-voter', nodeId: 3 } } }] },
    { type: 'append-response', from: 2, to: 1, term: 3, reject: true, index: 4, conflictTerm: 2, conflictIndex: 3 },
    { type: 'heartbeat', from: 1, to: 2, term: 3, commit: 9 },
    { type: 'heartbeat-response', from: 2, to: 1, term: 3 },
    { type: 'vote', from: 3, to: 1, term: 4, preVote: true, transfer: false, lastIndex: 9, lastTerm: 3 },
    { type: 'vote-response', from: 1, to: 3, term: 4, preVote: true, granted: true },
    { type: 'install-snapshot', from: 1, to: 0, term: 3, snapshot },
    { type: 'timeout-now', from: 1, to: 2, term: 3 },
  ];
  const method = (loadRaftPackageDefinition()[RAFT_SERVICE_NAME] as grpc.ServiceDefinition).Send as grpc.MethodDefinition<RaftMessage, unknown>;

  it.each(messages.map((m) => [m.type, m] as const))('round-trips %s through the wire bytes', (_type, message) => {
    const wire = method.requestSerialize(messageToProto('cluster-x', message));
    const decoded = messageFromProto(method.requestDeserialize(wire) as RaftMessage__Output);
    expect(decoded.clusterId).toBe('cluster-x');
    expect(decoded.message).toEqual(message);
  });

  it('rejects a message without a body as CORRUPT_MESSAGE', () => {
    const wire = method.requestSerialize({ clusterId: 'c', from: 1, to: 2, term: '1' });
    expect(() => messageFromProto(method.requestDeserialize(wire) as RaftMessage__Output)).toThrow(KavkaError);
  });
});
