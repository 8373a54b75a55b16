// The RaftStorage port: where a RaftNode makes the core's state durable. Two implementations:
// LevelRaftStorage (level-raft-storage.ts, production) and MemoryRaftStorage (below, tests).
//
// Contract (the Ready contract of raft-core.ts, step 1):
// - persist(write) applies the write atomically and durably: when its promise resolves, a crash
//   at any later point restarts with all of it; if the process dies before, with none of it.
// - Writes take effect in call order, even when a caller does not await one before the next.
// - load() returns what the writes left: hard state, the latest snapshot, the entries after it.
import { assert } from '../util/assert.js';
import { EMPTY_HARD_STATE, type DurableState, type Ready } from './ready.js';
import type { Entry, HardState, Snapshot } from './types.js';

/** The persistence part of a Ready. */
export type PersistWrite = Pick<Ready, 'hardState' | 'snapshot' | 'truncateFrom' | 'entries'>;

export interface RaftStorage {
  /** The durable state to build a RaftCore from. Called once, before any write. */
  load(): Promise<DurableState>;
  /** Step 1 of the Ready loop: snapshot (replaces every entry), truncation, entries, hard state. */
  persist(write: PersistWrite): Promise<void>;
  /**
   * The application took `snapshot` (from RaftCore.currentSnapshot() after compact): store it
   * and delete the entries it covers, atomically and durably.
   */
  compact(snapshot: Snapshot): Promise<void>;
  /** Waits for pending writes, then releases the store. */
  close(): Promise<void>;
}

/**
 * Applies a write to an in-memory copy of the durable state, checking the contract on the way
 * (entries extend the persisted log contiguously). Shared by MemoryRaftStorage and tests.
 */
export function applyWrite(state: { hardState: HardState; snapshot: Snapshot | undefined; entries: Entry[] }, write: PersistWrite): void {
  if (write.snapshot !== undefined) {
    state.snapshot = write.snapshot;
    state.entries = [];
  }
  if (write.truncateFrom !== undefined) {
    const from = write.truncateFrom;
    state.entries = state.entries.filter((e) => e.index < from);
  }
  for (const entry of write.entries) {
    const last = state.entries.length > 0 ? state.entries[state.entries.length - 1].index : (state.snapshot?.metadata.index ?? 0);
    assert(entry.index === last + 1, `persisted entry ${entry.index} follows ${last}`);
    state.entries.push(entry);
  }
  if (write.hardState !== undefined) state.hardState = write.hardState;
}

/**
 * Durable state kept in memory: it survives a RaftNode's close() and a new RaftNode can open it
 * again (a crash-restart in one process). Nothing survives the process. For tests.
 */
export class MemoryRaftStorage implements RaftStorage {
  private state: { hardState: HardState; snapshot: Snapshot | undefined; entries: Entry[] } = {
    hardState: EMPTY_HARD_STATE,
    snapshot: undefined,
    entries: [],
  };
  /** Writes that completed (for tests that count fsyncs). */
  writes = 0;

  async load(): Promise<DurableState> {
    return { hardState: this.state.hardState, snapshot: this.state.snapshot, entries: [...this.state.entries] };
  }

  async persist(write: PersistWrite): Promise<void> {
    applyWrite(this.state, write);
    this.writes++;
  }

  async compact(snapshot: Snapshot): Promise<void> {
    const current = this.state.snapshot?.metadata.index ?? 0;
    if (snapshot.metadata.index <= current) return;
    this.state.snapshot = snapshot;
    this.state.entries = this.state.entries.filter((e) => e.index > snapshot.metadata.index);
    this.writes++;
  }

  async close(): Promise<void> {
    // Nothing to release: the state stays for the next open.
  }
}
