// The Raft log as one server sees it: a snapshot (possibly the empty bootstrap snapshot at index 0)
// followed by entries, plus the bookkeeping of what has been persisted, committed and applied.
// Owned by RaftCore; not safe to share. All of it lives in memory: the metadata log is small and
// bounded by snapshots, and the driver keeps the durable copy.
//
// Invariants (asserted in checkInvariants and where each is enforced):
//   applied <= applying <= committed <= lastIndex; snapshot.index <= applying (a snapshot received
//   from the leader counts as applying until the driver applies it)
//   snapshot.index <= stableIndex <= handedOutIndex <= lastIndex
//   entries[i].index === snapshot.index + 1 + i; terms never decrease along the log
//   committed never decreases; committed entries are never truncated
// Ranges are closed [from, to] in index space unless stated otherwise.

import { assert } from '../util/assert.js';
import { applyConfigChange } from './membership.js';
import type { ClusterConfig, Entry, Snapshot, SnapshotMetadata } from './types.js';

export class RaftLog {
  /** The latest snapshot: entries up to its index are discarded. */
  private snapshot: Snapshot;
  private entries: Entry[];
  /** Configurations introduced by config entries in `entries`, in index order. */
  private configs: { index: number; config: ClusterConfig }[] = [];

  /** Highest index known to be committed. Moves forward only (commitTo). */
  committed: number;
  /** Highest index the application has applied (acknowledged through RaftCore.advance). */
  applied: number;
  /** Highest index handed to the application in a Ready (>= applied). */
  applying: number;
  /** Every entry at or below stableIndex is durable in the driver's storage. */
  stableIndex: number;
  /** Entries up to here were handed to the driver in a Ready (durable, or being made durable). */
  handedOutIndex: number;
  /** The driver must delete persisted entries >= this before appending (a follower's conflict). */
  pendingTruncateFrom: number | undefined;
  /** A snapshot received from the leader that the driver has not persisted yet. */
  pendingSnapshot: Snapshot | undefined;

  /** Starts from durable state: everything given here is already persisted. */
  constructor(snapshot: Snapshot, entries: readonly Entry[], committed: number) {
    this.snapshot = snapshot;
    this.entries = [];
    for (const entry of entries) this.appendOne(entry);
    this.committed = Math.max(committed, snapshot.metadata.index);
    assert(this.committed <= this.lastIndex(), `persisted commit ${committed} is past the last entry ${this.lastIndex()}`);
    this.applied = snapshot.metadata.index;
    this.applying = this.applied;
    this.stableIndex = this.lastIndex();
    this.handedOutIndex = this.stableIndex;
  }

  snapshotMetadata(): SnapshotMetadata {
    return this.snapshot.metadata;
  }

  currentSnapshot(): Snapshot {
    return this.snapshot;
  }

  firstIndex(): number {
    return this.snapshot.metadata.index + 1;
  }

  lastIndex(): number {
    return this.snapshot.metadata.index + this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) as number;
  }

  /** The term of the entry at `index`, or undefined if it is compacted away or beyond the log. */
  term(index: number): number | undefined {
    const snapshotIndex = this.snapshot.metadata.index;
    if (index === snapshotIndex) return this.snapshot.metadata.term;
    if (index < snapshotIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - snapshotIndex - 1].term;
  }

  entry(index: number): Entry {
    const entry = this.entries[index - this.snapshot.metadata.index - 1];
    assert(entry !== undefined && entry.index === index, `entry ${index} is in the log`);
    return entry;
  }

  /** Entries in [from, to], clamped to at most `maxCount`. Precondition: from >= firstIndex. */
  slice(from: number, to: number, maxCount = Number.MAX_SAFE_INTEGER): Entry[] {
    assert(from >= this.firstIndex(), `slice from ${from} is not compacted (first ${this.firstIndex()})`);
    const offset = this.snapshot.metadata.index + 1;
    const end = Math.min(to, this.lastIndex(), from + maxCount - 1);
    return this.entries.slice(from - offset, end - offset + 1);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a log is at least as up to date if its last term is higher, or equal with index >=. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm() || (lastTerm === this.lastTerm() && lastIndex >= this.lastIndex());
  }

  /** The latest configuration in the log (committed or not), given the snapshot's as a base. */
  config(): ClusterConfig {
    return this.configs.length > 0 ? this.configs[this.configs.length - 1].config : this.snapshot.metadata.config;
  }

  /** The configuration in force at `index` (>= snapshot index). */
  configAt(index: number): ClusterConfig {
    assert(index >= this.snapshot.metadata.index, `config at ${index} is not compacted away`);
    let config = this.snapshot.metadata.config;
    for (const c of this.configs) {
      if (c.index > index) break;
      config = c.config;
    }
    return config;
  }

  /** Index of the latest config entry, or the snapshot index if the log holds none. */
  lastConfigIndex(): number {
    return this.configs.length > 0 ? this.configs[this.configs.length - 1].index : this.snapshot.metadata.index;
  }

  /** A leader appends to its own log; it never overwrites (Leader Append-Only, §5.3). */
  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      assert(entry.index === this.lastIndex() + 1, `leader appends at ${this.lastIndex() + 1}, not ${entry.index}`);
      this.appendOne(entry);
    }
  }

  /**
   * A follower accepts entries that follow a matching (prevIndex, prevTerm). Entries it already
   * has are skipped; at the first conflicting index the suffix is truncated and replaced (§5.3).
   * Returns the index of the last new entry (prevIndex + entries.length).
   * Precondition: matchTerm(prevIndex, prevTerm) and prevIndex >= committed.
   */
  appendAfterMatch(prevIndex: number, entries: readonly Entry[]): number {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      assert(entry.index === prevIndex + 1 + i, `entries are consecutive after ${prevIndex}`);
      const existing = this.term(entry.index);
      if (existing === entry.term) continue;
      if (existing !== undefined) this.truncateFrom(entry.index);
      for (const rest of entries.slice(i)) this.appendOne(rest);
      break;
    }
    return prevIndex + entries.length;
  }

  /** Drops entries >= index. Only uncommitted entries may go (they were never acknowledged). */
  private truncateFrom(index: number): void {
    assert(index > this.committed, `truncating at ${index} would drop committed entries (commit ${this.committed})`);
    assert(index > this.snapshot.metadata.index, 'truncation stays above the snapshot');
    this.entries.length = index - this.snapshot.metadata.index - 1;
    this.configs = this.configs.filter((c) => c.index < index);
    // Entries handed to the driver may be on disk (or about to be): it must delete them.
    if (index <= this.handedOutIndex) {
      this.handedOutIndex = index - 1;
      this.stableIndex = Math.min(this.stableIndex, index - 1);
      this.pendingTruncateFrom = Math.min(this.pendingTruncateFrom ?? index, index);
    }
  }

  private appendOne(entry: Entry): void {
    assert(entry.index === this.lastIndex() + 1, `entry ${entry.index} follows ${this.lastIndex()}`);
    assert(entry.term >= this.lastTerm(), `entry ${entry.index} term ${entry.term} >= previous term ${this.lastTerm()}`);
    this.entries.push(entry);
    if (entry.payload.kind === 'config') {
      this.configs.push({ index: entry.index, config: applyConfigChange(this.config(), entry.payload.change) });
    }
  }

  /** Raises the commit index; it never moves backward. */
  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} is within the log (last ${this.lastIndex()})`);
    this.committed = index;
  }

  /** Entries committed but not yet handed to the application. */
  nextCommittedEntries(): Entry[] {
    if (this.committed <= this.applying) return [];
    return this.slice(this.applying + 1, this.committed);
  }

  /**
   * The leader's snapshot replaces this log (§7): the log did not hold the snapshot's last entry,
   * so every entry goes. Precondition: snapshot index > committed.
   */
  restore(snapshot: Snapshot): void {
    const { index } = snapshot.metadata;
    assert(index > this.committed, `restored snapshot ${index} is past commit ${this.committed}`);
    this.snapshot = snapshot;
    this.entries = [];
    this.configs = [];
    this.committed = index;
    this.applying = Math.max(this.applying, index);
    this.stableIndex = index;
    this.handedOutIndex = index;
    this.pendingTruncateFrom = undefined;
    this.pendingSnapshot = snapshot;
  }

  /**
   * The application has durably stored a snapshot of its state at `index` (<= applied): drop the
   * entries it covers. Returns false if the log is already compacted at or past `index`.
   */
  compact(index: number, data: Uint8Array): boolean {
    if (index <= this.snapshot.metadata.index) return false;
    assert(index <= this.applied, `compact at ${index} only covers applied entries (applied ${this.applied})`);
    assert(index <= this.stableIndex, `compact at ${index} only covers persisted entries`);
    const metadata: SnapshotMetadata = { index, term: this.term(index) as number, config: this.configAt(index) };
    this.entries = this.entries.slice(index - this.snapshot.metadata.index);
    this.configs = this.configs.filter((c) => c.index > index);
    this.snapshot = { metadata, data };
    return true;
  }

  checkInvariants(): void {
    const snapshotIndex = this.snapshot.metadata.index;
    assert(snapshotIndex <= this.applying, 'snapshot index <= applying');
    assert(this.applied <= this.applying, 'applied <= applying');
    assert(this.applying <= this.committed, 'applying <= committed');
    assert(this.committed <= this.lastIndex(), 'committed <= last index');
    assert(snapshotIndex <= this.stableIndex, 'snapshot index <= stable index');
    assert(this.stableIndex <= this.handedOutIndex, 'stable index <= handed-out index');
    assert(this.handedOutIndex <= this.lastIndex(), 'handed-out index <= last index');
  }
}
