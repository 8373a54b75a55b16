// A segment's sparse time index, Kafka's `.timeindex` layout:
//
//   entry (12 bytes, big-endian):  timestamp int64 | relativeOffset int32
//
// An entry (T, O) says: T is the largest batch max-timestamp in the segment up to the batch whose
// last offset is O, and O's batch is the first to reach T. So every batch before O's batch has a
// max-timestamp below T. Entries are added beside offset-index entries, and once more when the
// segment is sealed or the log closes, so the last entry holds the segment's largest timestamp.
//
// Invariants: timestamps strictly increase; relative offsets never decrease.
import { assert } from '../util/assert.js';
import { INT32_MAX } from './log-config.js';

export const TIME_INDEX_ENTRY_SIZE = 12;
const INITIAL_CAPACITY_ENTRIES = 64;

export interface TimeIndexEntry {
  timestamp: bigint;
  offset: bigint;
}

export class TimeIndex {
  private buffer: Buffer;
  private count: number;

  /** `bytes` is taken over (not copied); its length must be a whole number of entries. */
  constructor(
    readonly baseOffset: bigint,
    bytes?: Buffer,
  ) {
    assert(bytes === undefined || bytes.length % TIME_INDEX_ENTRY_SIZE === 0, 'time index bytes are whole entries');
    this.buffer = bytes ?? Buffer.alloc(INITIAL_CAPACITY_ENTRIES * TIME_INDEX_ENTRY_SIZE);
    this.count = bytes === undefined ? 0 : bytes.length / TIME_INDEX_ENTRY_SIZE;
  }

  get entryCount(): number {
    return this.count;
  }

  private timestampAt(i: number): bigint {
    return this.buffer.readBigInt64BE(i * TIME_INDEX_ENTRY_SIZE);
  }

  private relativeOffsetAt(i: number): number {
    return this.buffer.readInt32BE(i * TIME_INDEX_ENTRY_SIZE + 8);
  }

  private entryAt(i: number): TimeIndexEntry {
    return { timestamp: this.timestampAt(i), offset: this.baseOffset + BigInt(this.relativeOffsetAt(i)) };
  }

  lastEntry(): TimeIndexEntry | undefined {
    return this.count === 0 ? undefined : this.entryAt(this.count - 1);
  }

  /** Adds (timestamp, offset) when the timestamp is above the last entry's (Kafka's rule). */
  maybeAppend(timestamp: bigint, offset: bigint): boolean {
    if (timestamp < 0n) return false;
    const last = this.lastEntry();
    if (last !== undefined && timestamp <= last.timestamp) return false;
    const relative = offset - this.baseOffset;
    assert(relative >= 0n && relative <= BigInt(INT32_MAX), `offset ${offset} fits the time index of segment ${this.baseOffset}`);
    assert(last === undefined || offset >= last.offset, `time index offsets never decrease (${offset} after ${last?.offset})`);
    if ((this.count + 1) * TIME_INDEX_ENTRY_SIZE > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(this.buffer.length * 2, INITIAL_CAPACITY_ENTRIES * TIME_INDEX_ENTRY_SIZE));
      this.buffer.copy(grown, 0, 0, this.count * TIME_INDEX_ENTRY_SIZE);
      this.buffer = grown;
    }
    this.buffer.writeBigInt64BE(timestamp, this.count * TIME_INDEX_ENTRY_SIZE);
    this.buffer.writeInt32BE(Number(relative), this.count * TIME_INDEX_ENTRY_SIZE + 8);
    this.count += 1;
    return true;
  }

  /** The entry with the largest timestamp <= target, or undefined when every entry is later. */
  lookup(target: bigint): TimeIndexEntry | undefined {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.timestampAt(middle) <= target) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found < 0 ? undefined : this.entryAt(found);
  }

  clear(): void {
    this.count = 0;
  }

  /**
   * Drops the entries whose offset is >= `offset` (their batches were truncated away). Returns how
   * many. An entry kept still holds: its batch, and every batch before it, remain.
   */
  truncateTo(offset: bigint): number {
    let keep = this.count;
    while (keep > 0 && this.baseOffset + BigInt(this.relativeOffsetAt(keep - 1)) >= offset) keep--;
    const dropped = this.count - keep;
    this.count = keep;
    return dropped;
  }

  /** The entries as the `.timeindex` file holds them (a view, not a copy). */
  toBytes(): Buffer {
    return this.buffer.subarray(0, this.count * TIME_INDEX_ENTRY_SIZE);
  }

  /** Why these entries cannot be trusted when the segment's offsets stay below `offsetLimit`, or undefined. */
  inconsistency(offsetLimit: bigint | undefined): string | undefined {
    let previousTimestamp = -1n;
    let previousRel = 0;
    for (let i = 0; i < this.count; i++) {
      const timestamp = this.timestampAt(i);
      const rel = this.relativeOffsetAt(i);
      if (timestamp <= previousTimestamp) return `entry ${i} has timestamp ${timestamp} after ${previousTimestamp}`;
      if (rel < previousRel) return `entry ${i} has relative offset ${rel} after ${previousRel}`;
      if (offsetLimit !== undefined && this.baseOffset + BigInt(rel) >= offsetLimit) return `entry ${i} has offset ${this.baseOffset + BigInt(rel)}, at or past ${offsetLimit}`;
      previousTimestamp = timestamp;
      previousRel = rel;
    }
    return undefined;
  }
}
