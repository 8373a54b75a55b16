// The Ready contract between RaftCore and its driver: what the driver reads back at start-up
// (DurableState), the work the core hands it (Ready), and the core's bookkeeping of that hand-off
// (ReadyTracker). The raft-core.ts header gives the driver loop step by step.

import { assert } from '../util/assert.js';
import type { Message } from './messages.js';
import type { RaftLog } from './raft-log.js';
import type { Entry, HardState, Snapshot, SoftState } from './types.js';

/** What the driver read back from its storage at start-up. Empty for a brand-new server. */
export interface DurableState {
  readonly hardState: HardState;
  /** The latest persisted snapshot, if any. */
  readonly snapshot?: Snapshot;
  /** Persisted entries after the snapshot, consecutive. */
  readonly entries: readonly Entry[];
}

export const EMPTY_HARD_STATE: HardState = { term: 0, votedFor: undefined, commit: 0 };

/**
 * The work the core hands to the driver. Process in field order: persist, then send, then apply;
 * then call advance(ready). See the raft-core.ts header for the exact steps.
 */
export interface Ready {
  /** Persist (step 1d) if set: it changed since the last Ready. */
  readonly hardState: HardState | undefined;
  /** Persist (step 1a) and later apply (step 3) if set: it replaces the whole log. */
  readonly snapshot: Snapshot | undefined;
  /** Delete persisted entries with index >= truncateFrom (step 1b), if set. */
  readonly truncateFrom: number | undefined;
  /** Persist (step 1c): entries not yet handed out, consecutive. */
  readonly entries: readonly Entry[];
  /** Send (step 2), only after step 1 is durable. Delivery is best effort. */
  readonly messages: readonly Message[];
  /** Apply (step 3) in order, after the snapshot. Every one is durable by then. */
  readonly committedEntries: readonly Entry[];
  /** Who leads now, for observers; not persisted. */
  readonly softState: SoftState;
}

/**
 * RaftCore's side of the hand-off (etcd-raft's RawNode bookkeeping): the messages queued since the
 * last Ready, the hard state the driver last persisted, and the one Ready the driver holds. It
 * moves the log's handed-out, applying, stable and applied marks as Readies go out and come back.
 * Owned by RaftCore; the caller computes the hard and soft state it passes in.
 */
export class ReadyTracker {
  private readonly log: RaftLog;
  private outbox: Message[] = [];
  private persistedHardState: HardState;
  private outstanding: Ready | undefined;

  /** `persisted`: the hard state the durable state held at start-up. */
  constructor(log: RaftLog, persisted: HardState) {
    this.log = log;
    this.persistedHardState = persisted;
  }

  /** Queues a message for the next Ready. */
  send(message: Message): void {
    this.outbox.push(message);
  }

  /** True when no Ready is outstanding and ready() would return work. */
  hasReady(hardState: HardState): boolean {
    if (this.outstanding !== undefined) return false;
    return (
      this.outbox.length > 0 ||
      !sameHardState(hardState, this.persistedHardState) ||
      this.log.pendingSnapshot !== undefined ||
      this.log.pendingTruncateFrom !== undefined ||
      this.log.lastIndex() > this.log.handedOutIndex ||
      this.log.committed > this.log.applying
    );
  }

  /** Hands out the pending work. Precondition: no Ready is outstanding (advance the last one). */
  ready(hardState: HardState, softState: SoftState): Ready {
    assert(this.outstanding === undefined, 'ready() called again before advance()');
    const snapshot = this.log.pendingSnapshot;
    const truncateFrom = this.log.pendingTruncateFrom;
    const entries = this.log.lastIndex() > this.log.handedOutIndex ? this.log.slice(this.log.handedOutIndex + 1, this.log.lastIndex()) : [];
    const committedEntries = this.log.nextCommittedEntries();
    const rd: Ready = {
      hardState: sameHardState(hardState, this.persistedHardState) ? undefined : hardState,
      snapshot,
      truncateFrom,
      entries,
      messages: this.outbox,
      committedEntries,
      softState,
    };
    this.outbox = [];
    this.log.pendingSnapshot = undefined;
    this.log.pendingTruncateFrom = undefined;
    this.log.handedOutIndex = this.log.lastIndex();
    if (committedEntries.length > 0) this.log.applying = committedEntries[committedEntries.length - 1].index;
    this.outstanding = rd;
    return rd;
  }

  /** The driver has persisted, sent and applied `rd`. */
  advance(rd: Ready): void {
    assert(this.outstanding === rd, 'advance() takes the outstanding Ready');
    this.outstanding = undefined;
    if (rd.hardState !== undefined) {
      assert(rd.hardState.commit >= this.persistedHardState.commit, 'the persisted commit never decreases');
      assert(rd.hardState.term >= this.persistedHardState.term, 'the persisted term never decreases');
      this.persistedHardState = rd.hardState;
    }
    if (rd.snapshot !== undefined) this.log.applied = Math.max(this.log.applied, rd.snapshot.metadata.index);
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      // If the entry is still there, so is everything before it (Log Matching): all durable.
      if (last.index > this.log.stableIndex && this.log.matchTerm(last.index, last.term)) {
        const pending = this.log.pendingTruncateFrom;
        assert(pending === undefined || pending > last.index, 'persisted entries still in the log are not pending truncation');
        this.log.stableIndex = last.index;
      }
    }
    if (rd.committedEntries.length > 0) {
      this.log.applied = rd.committedEntries[rd.committedEntries.length - 1].index;
    }
    this.log.checkInvariants();
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor && a.commit === b.commit && (a.rejoining === true) === (b.rejoining === true);
}
