// A segment's sparse offset index, Kafka's `.index` layout:
//
//   entry (8 bytes, big-endian):  relativeOffset int32 | position int32
//
// relativeOffset = last offset of the indexed batch - segment base offset; position = the byte in
// the segment's .log where that batch starts. The log adds one entry per indexIntervalBytes of
// appended data, so the index stays small enough to keep in memory; it is written to disk when
// the segment is sealed and when the log closes, and rebuilt from the .log otherwise.
//
// Invariants: both fields strictly increase from entry to entry; every position is the start of
// a batch below the segment's size.
//
// lookup(target) returns the entry with the largest offset <= target: the batch there ends at or
// before the target, so a forward scan from its position reaches the batch holding the target
// (or, in a gap left by compaction, the next batch). Offsets are never assumed consecutive.
import { assert } from '../util/assert.js';
import { INT32_MAX } from './log-config.js';

export const OFFSET_INDEX_ENTRY_SIZE = 8;
const INITIAL_CAPACITY_ENTRIES = 64;

export interface OffsetPosition {
  offset: bigint;
  position: number;
}

export class OffsetIndex {
  private buffer: Buffer;
  private count: number;

  /** `bytes` is taken over (not copied); its length must be a whole number of entries. */
  constructor(
    readonly baseOffset: bigint,
    bytes?: Buffer,
  ) {
    assert(bytes === undefined || bytes.length % OFFSET_INDEX_ENTRY_SIZE === 0, 'offset index bytes are whole entries');
    this.buffer = bytes ?? Buffer.alloc(INITIAL_CAPACITY_ENTRIES * OFFSET_INDEX_ENTRY_SIZE);
    this.count = bytes === undefined ? 0 : bytes.length / OFFSET_INDEX_ENTRY_SIZE;
  }

  get entryCount(): number {
    return this.count;
  }

  relativeOffsetAt(i: number): number {
    return this.buffer.readInt32BE(i * OFFSET_INDEX_ENTRY_SIZE);
  }

  positionAt(i: number): number {
    return this.buffer.readInt32BE(i * OFFSET_INDEX_ENTRY_SIZE + 4);
  }

  lastEntry(): OffsetPosition | undefined {
    if (this.count === 0) return undefined;
    return { offset: this.baseOffset + BigInt(this.relativeOffsetAt(this.count - 1)), position: this.positionAt(this.count - 1) };
  }

  /** Adds an entry; offset and position must be above the last entry's. */
  append(offset: bigint, position: number): void {
    const relative = offset - this.baseOffset;
    assert(relative >= 0n && relative <= BigInt(INT32_MAX), `offset ${offset} fits the index of segment ${this.baseOffset}`);
    assert(position >= 0 && position <= INT32_MAX, `position ${position} fits an int32`);
    const rel = Number(relative);
    if (this.count > 0) {
      assert(rel > this.relativeOffsetAt(this.count - 1), `index offsets increase (${offset} after ${this.lastEntry()?.offset})`);
      assert(position > this.positionAt(this.count - 1), `index positions increase (${position} after ${this.positionAt(this.count - 1)})`);
    }
    if ((this.count + 1) * OFFSET_INDEX_ENTRY_SIZE > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(this.buffer.length * 2, INITIAL_CAPACITY_ENTRIES * OFFSET_INDEX_ENTRY_SIZE));
      this.buffer.copy(grown, 0, 0, this.count * OFFSET_INDEX_ENTRY_SIZE);
      this.buffer = grown;
    }
    this.buffer.writeInt32BE(rel, this.count * OFFSET_INDEX_ENTRY_SIZE);
    this.buffer.writeInt32BE(position, this.count * OFFSET_INDEX_ENTRY_SIZE + 4);
    this.count += 1;
  }

  /** The entry with the largest offset <= target, or (baseOffset, 0) when there is none. */
  lookup(target: bigint): OffsetPosition {
    const none = { offset: this.baseOffset, position: 0 };
    const relative = target - this.baseOffset;
    if (relative < 0n || this.count === 0) return none;
    const rel = relative > BigInt(INT32_MAX) ? INT32_MAX : Number(relative);
    // Largest i with relativeOffsetAt(i) <= rel, by binary search over [low, high].
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.relativeOffsetAt(middle) <= rel) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    if (found < 0) return none;
    return { offset: this.baseOffset + BigInt(this.relativeOffsetAt(found)), position: this.positionAt(found) };
  }

  clear(): void {
    this.count = 0;
  }

  /** Drops the entries whose offset is >= `offset` (their batches were truncated away). Returns how many. */
  truncateTo(offset: bigint): number {
    let keep = this.count;
    while (keep > 0 && this.baseOffset + BigInt(this.relativeOffsetAt(keep - 1)) >= offset) keep--;
    const dropped = this.count - keep;
    this.count = keep;
    return dropped;
  }

  /** The entries as the `.index` file holds them (a view, not a copy). */
  toBytes(): Buffer {
    return this.buffer.subarray(0, this.count * OFFSET_INDEX_ENTRY_SIZE);
  }

  /**
   * Why these entries cannot be trusted for a .log of `logSize` bytes whose offsets stay below
   * `offsetLimit` (the next segment's base offset, when known), or undefined when they can.
   */
  inconsistency(logSize: number, offsetLimit: bigint | undefined): string | undefined {
    let previousRel = -1;
    let previousPosition = -1;
    for (let i = 0; i < this.count; i++) {
      const rel = this.relativeOffsetAt(i);
      const position = this.positionAt(i);
      if (rel < 0 || rel <= previousRel) return `entry ${i} has relative offset ${rel} after ${previousRel}`;
      if (position < 0 || position <= previousPosition) return `entry ${i} has position ${position} after ${previousPosition}`;
      if (position >= logSize) return `entry ${i} points at position ${position}, past the log's ${logSize} bytes`;
      if (offsetLimit !== undefined && this.baseOffset + BigInt(rel) >= offsetLimit) return `entry ${i} has offset ${this.baseOffset + BigInt(rel)}, at or past the next segment's base ${offsetLimit}`;
      previousRel = rel;
      previousPosition = position;
    }
    return undefined;
  }
}
