// RaftStorage on `level` (LevelDB through classic-level): one database directory per Raft server.
//
// Key layout (binary keys compare bytewise, so entries sort by index):
//   0x00                          identity: UTF-8 JSON {"clusterId": string, "nodeId": number,
//                                 "directoryId": string} (directoryId: random per created store;
//                                 stores written before it existed get one on their next open)
//   0x01                          hard state   (RaftHardState, see raft-codec.ts for the value layout)
//   0x02                          snapshot     (RaftSnapshot)
//   0x03 | index (8 bytes, BE)    entry        (RaftEntry)
// Invariant on disk: the entry keys are exactly snapshotIndex+1 .. lastIndex with no gap, and
// hard state's commit <= lastIndex. Every write is one LevelDB batch with { sync: true }: LevelDB
// appends the batch to its write-ahead log and fsyncs it before the promise resolves, so a batch
// is all-or-nothing across crashes. (classic-level reads `sync` from the batch options and sets
// leveldb::WriteOptions::sync; see binding.cc batch_do.)
//
// Who calls it: one RaftNode. Writes are chained, so they reach LevelDB one at a time in call
// order even if the caller does not await each (two concurrent LevelDB writes could otherwise
// run in either order on libuv's thread pool).
import { Level } from 'level';
import { assert } from '../util/assert.js';
import { KavkaError } from '../util/errors.js';
import { EMPTY_HARD_STATE, type DurableState } from './ready.js';
import {
  decodeEntryValue,
  decodeHardStateValue,
  decodeSnapshotValue,
  encodeEntryValue,
  encodeHardStateValue,
  encodeSnapshotValue,
} from './raft-codec.js';
import type { PersistWrite, RaftStorage } from './raft-storage.js';
import type { Entry, NodeId, Snapshot } from './types.js';

const IDENTITY_KEY = Uint8Array.of(0x00);
const HARD_STATE_KEY = Uint8Array.of(0x01);
const SNAPSHOT_KEY = Uint8Array.of(0x02);
const ENTRY_PREFIX = 0x03;

/** Explicit, per STYLE.md: every Raft write is durable before it resolves. */
export const RAFT_WRITE_OPTIONS = { sync: true } as const;

type Operation = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

export function entryKey(index: number): Uint8Array {
  assert(Number.isSafeInteger(index) && index >= 1, `entry index ${index} is a positive safe integer`);
  const key = new Uint8Array(9);
  key[0] = ENTRY_PREFIX;
  new DataView(key.buffer).setBigUint64(1, BigInt(index));
  return key;
}

function indexOfEntryKey(key: Uint8Array): number {
  assert(key.length === 9 && key[0] === ENTRY_PREFIX, 'an entry key is 0x03 + 8 bytes');
  return Number(new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(1));
}

export interface LevelRaftStorageOptions {
  /** The database directory (created if missing). */
  readonly directory: string;
  /** If given, the directory must belong to this cluster (recorded on first open). */
  readonly clusterId?: string;
  /** If given, the directory must belong to this node (recorded on first open). */
  readonly nodeId?: NodeId;
  /** Makes a directory id for a store that has none (random; the owner is a driver). */
  readonly newDirectoryId?: () => string;
}

export class LevelRaftStorage implements RaftStorage {
  private readonly db: Level<Uint8Array, Uint8Array>;
  /**
   * The store holds no Raft state yet (no hard state, snapshot or entry): just created, or never
   * used. The owner may format() it before load().
   */
  fresh = false;
  /** This store's directory id (KIP-853); valid after open() for a formatted store, after format() for a fresh one. */
  directoryId: string | undefined;
  /** Persisted entries are exactly (snapshotIndex, lastIndex]. Valid after load(). */
  private snapshotIndex = 0;
  private lastIndex = 0;
  private loaded = false;
  /** The chain of writes; each starts when the previous one has finished. */
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  private identity: { clusterId: string | null; nodeId: number | null; directoryId?: string } | undefined;

  private constructor(db: Level<Uint8Array, Uint8Array>) {
    this.db = db;
  }

  /** Opens (creating if needed) and checks the identity. Fails with KAFKA_STORAGE_ERROR or INVALID_CONFIG. */
  static async open(options: LevelRaftStorageOptions): Promise<LevelRaftStorage> {
    const db = new Level<Uint8Array, Uint8Array>(options.directory, { keyEncoding: 'view', valueEncoding: 'view' });
    try {
      await db.open();
    } catch (error) {
      throw new KavkaError('KAFKA_STORAGE_ERROR', `cannot open the Raft store in ${options.directory}: ${(error as Error).message}`, { cause: error });
    }
    const storage = new LevelRaftStorage(db);
    try {
      await storage.checkIdentity(options);
    } catch (error) {
      await db.close();
      throw error;
    }
    return storage;
  }

  private async checkIdentity(options: LevelRaftStorageOptions): Promise<void> {
    this.fresh =
      (await this.db.get(HARD_STATE_KEY)) === undefined &&
      (await this.db.get(SNAPSHOT_KEY)) === undefined &&
      (await this.db.keys({ gte: Uint8Array.of(ENTRY_PREFIX), lt: Uint8Array.of(ENTRY_PREFIX + 1), limit: 1 }).all()).length === 0;
    if (options.clusterId === undefined && options.nodeId === undefined) return;
    const stored = await this.db.get(IDENTITY_KEY);
    const wanted = { clusterId: options.clusterId ?? null, nodeId: options.nodeId ?? null };
    if (stored === undefined) {
      this.identity = { ...wanted, directoryId: options.newDirectoryId?.() };
      await this.db.put(IDENTITY_KEY, new TextEncoder().encode(JSON.stringify(this.identity)), RAFT_WRITE_OPTIONS);
      this.directoryId = this.identity.directoryId;
      return;
    }
    const found = JSON.parse(new TextDecoder().decode(stored)) as { clusterId: string | null; nodeId: number | null; directoryId?: string };
    this.identity = found;
    this.directoryId = found.directoryId;
    if (this.directoryId === undefined && options.newDirectoryId !== undefined) {
      this.identity = { ...found, directoryId: options.newDirectoryId() };
      this.directoryId = this.identity.directoryId;
      await this.db.put(IDENTITY_KEY, new TextEncoder().encode(JSON.stringify(this.identity)), RAFT_WRITE_OPTIONS);
    }
    if (found.clusterId !== wanted.clusterId || found.nodeId !== wanted.nodeId) {
      throw new KavkaError(
        'INVALID_CONFIG',
        `the Raft store in ${this.db.location} belongs to cluster ${found.clusterId} node ${found.nodeId}, not cluster ${wanted.clusterId} node ${wanted.nodeId}`,
      );
    }
  }

  /**
   * Formats a fresh store (no hard state, snapshot or entry: created now, or never used): records
   * its directory id and, if `rejoining`, a hard state that marks it as the replacement of a
   * store whose data was deleted (raft-core.ts, "Rejoining"), in one durable batch. A fresh store
   * stays fresh until Raft first persists (a crash before that re-runs the owner's decision).
   */
  async format(directoryId: string, rejoining: boolean): Promise<void> {
    assert(this.fresh && !this.loaded, 'format() a fresh store before load()');
    const ops: Operation[] = [];
    if (this.identity !== undefined) ops.push({ type: 'put', key: IDENTITY_KEY, value: new TextEncoder().encode(JSON.stringify({ ...this.identity, directoryId })) });
    if (rejoining) ops.push({ type: 'put', key: HARD_STATE_KEY, value: encodeHardStateValue({ ...EMPTY_HARD_STATE, rejoining: true }) });
    await this.batch(ops);
    this.fresh = !rejoining;
    this.directoryId = directoryId;
  }

  async load(): Promise<DurableState> {
    assert(!this.loaded, 'load() is called once');
    const hardStateValue = await this.db.get(HARD_STATE_KEY);
    const snapshotValue = await this.db.get(SNAPSHOT_KEY);
    const hardState = hardStateValue === undefined ? EMPTY_HARD_STATE : decodeHardStateValue(hardStateValue);
    const snapshot = snapshotValue === undefined ? undefined : decodeSnapshotValue(snapshotValue);
    const snapshotIndex = snapshot?.metadata.index ?? 0;
    const entries: Entry[] = [];
    // Entries at or below the snapshot cannot exist (compaction deletes them in the same batch).
    for await (const [key, value] of this.db.iterator({ gt: entryKeyFloor(snapshotIndex), lt: Uint8Array.of(ENTRY_PREFIX + 1) })) {
      const index = indexOfEntryKey(key);
      const entry = decodeEntryValue(value);
      const expected = snapshotIndex + entries.length + 1;
      if (index !== expected || entry.index !== index) {
        throw new KavkaError('KAFKA_STORAGE_ERROR', `the Raft log in ${this.db.location} has entry ${entry.index} under key ${index} where ${expected} was expected`);
      }
      entries.push(entry);
    }
    const lastIndex = snapshotIndex + entries.length;
    if (hardState.commit > lastIndex) {
      throw new KavkaError('KAFKA_STORAGE_ERROR', `the Raft store in ${this.db.location} commits ${hardState.commit} beyond its last entry ${lastIndex}`);
    }
    this.snapshotIndex = snapshotIndex;
    this.lastIndex = lastIndex;
    this.loaded = true;
    return { hardState, snapshot, entries };
  }

  persist(write: PersistWrite): Promise<void> {
    return this.enqueue(() => this.persistNow(write));
  }

  compact(snapshot: Snapshot): Promise<void> {
    return this.enqueue(() => this.compactNow(snapshot));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail.catch(() => undefined);
    await this.db.close();
  }

  private enqueue(write: () => Promise<void>): Promise<void> {
    assert(this.loaded, 'load() before writing');
    assert(!this.closed, 'no writes after close()');
    const next = this.tail.then(write);
    // A failed write fails its caller; later writes still run in order (the caller stops the node).
    this.tail = next.catch(() => undefined);
    return next;
  }

  private async persistNow(write: PersistWrite): Promise<void> {
    const ops: Operation[] = [];
    let snapshotIndex = this.snapshotIndex;
    let lastIndex = this.lastIndex;
    if (write.snapshot !== undefined) {
      ops.push({ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshotValue(write.snapshot) });
      for (let i = snapshotIndex + 1; i <= lastIndex; i++) ops.push({ type: 'del', key: entryKey(i) });
      snapshotIndex = write.snapshot.metadata.index;
      lastIndex = snapshotIndex;
    }
    if (write.truncateFrom !== undefined) {
      assert(write.truncateFrom > snapshotIndex, `truncation at ${write.truncateFrom} stays above the snapshot ${snapshotIndex}`);
      for (let i = write.truncateFrom; i <= lastIndex; i++) ops.push({ type: 'del', key: entryKey(i) });
      lastIndex = Math.min(lastIndex, write.truncateFrom - 1);
    }
    for (const entry of write.entries) {
      assert(entry.index === lastIndex + 1, `persisted entry ${entry.index} follows ${lastIndex}`);
      ops.push({ type: 'put', key: entryKey(entry.index), value: encodeEntryValue(entry) });
      lastIndex = entry.index;
    }
    if (write.hardState !== undefined) {
      assert(write.hardState.commit <= lastIndex, `persisted commit ${write.hardState.commit} <= last entry ${lastIndex}`);
      ops.push({ type: 'put', key: HARD_STATE_KEY, value: encodeHardStateValue(write.hardState) });
    }
    await this.batch(ops);
    this.snapshotIndex = snapshotIndex;
    this.lastIndex = lastIndex;
  }

  private async compactNow(snapshot: Snapshot): Promise<void> {
    const index = snapshot.metadata.index;
    if (index <= this.snapshotIndex) return; // a newer snapshot (from the leader) is already stored
    assert(index <= this.lastIndex, `a snapshot at ${index} covers only persisted entries (last ${this.lastIndex})`);
    const ops: Operation[] = [{ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshotValue(snapshot) }];
    for (let i = this.snapshotIndex + 1; i <= index; i++) ops.push({ type: 'del', key: entryKey(i) });
    await this.batch(ops);
    this.snapshotIndex = index;
  }

  private async batch(ops: Operation[]): Promise<void> {
    if (ops.length === 0) return;
    try {
      await this.db.batch(ops, RAFT_WRITE_OPTIONS);
    } catch (error) {
      throw new KavkaError('KAFKA_STORAGE_ERROR', `Raft store write failed in ${this.db.location}: ${(error as Error).message}`, { cause: error });
    }
  }
}

/** The smallest key above every entry key at or below `index`. */
function entryKeyFloor(index: number): Uint8Array {
  return index === 0 ? Uint8Array.of(ENTRY_PREFIX) : entryKey(index);
}
