// What a Raft server has made durable, kept in memory: the test stand-in for the driver's level
// store. It applies a Ready's persistence step exactly as the Ready contract says, and checks the
// contract while doing so (entries always extend the persisted log contiguously).

import { assert } from '../../src/util/assert.js';
import { EMPTY_HARD_STATE, type DurableState, type Entry, type HardState, type Ready, type Snapshot } from '../../src/raft/index.js';

export class MemoryStorage {
  hardState: HardState = EMPTY_HARD_STATE;
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];

  /** Step 1 of the driver loop: snapshot, truncation, entries, hard state — one atomic write. */
  persist(rd: Ready): void {
    if (rd.snapshot !== undefined) {
      this.snapshot = rd.snapshot;
      this.entries = [];
    }
    if (rd.truncateFrom !== undefined) {
      const from = rd.truncateFrom;
      this.entries = this.entries.filter((e) => e.index < from);
    }
    for (const entry of rd.entries) {
      assert(entry.index === this.lastIndex() + 1, `persisted entry ${entry.index} follows ${this.lastIndex()}`);
      this.entries.push(entry);
    }
    if (rd.hardState !== undefined) this.hardState = rd.hardState;
  }

  /** The application stored a snapshot: entries it covers may go. */
  compact(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = this.entries.filter((e) => e.index > snapshot.metadata.index);
  }

  lastIndex(): number {
    if (this.entries.length > 0) return this.entries[this.entries.length - 1].index;
    return this.snapshot?.metadata.index ?? 0;
  }

  durable(): DurableState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] };
  }
}
