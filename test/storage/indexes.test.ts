import { describe, expect, it } from 'vitest';
import { OffsetIndex } from '../../src/storage/offset-index.js';
import { TimeIndex } from '../../src/storage/time-index.js';
import { AssertionError } from '../../src/util/assert.js';

describe('OffsetIndex', () => {
  const index = new OffsetIndex(100n);
  index.append(105n, 300);
  index.append(110n, 700);
  index.append(130n, 1500);

  it('finds the entry at or before the target by binary search', () => {
    expect(index.lookup(99n)).toEqual({ offset: 100n, position: 0 });
    expect(index.lookup(104n)).toEqual({ offset: 100n, position: 0 });
    expect(index.lookup(105n)).toEqual({ offset: 105n, position: 300 });
    expect(index.lookup(109n)).toEqual({ offset: 105n, position: 300 });
    expect(index.lookup(110n)).toEqual({ offset: 110n, position: 700 });
    expect(index.lookup(129n)).toEqual({ offset: 110n, position: 700 });
    expect(index.lookup(10_000_000_000n)).toEqual({ offset: 130n, position: 1500 });
  });

  it('round-trips through its file bytes (8-byte big-endian entries)', () => {
    const bytes = Buffer.from(index.toBytes());
    expect(bytes.length).toBe(24);
    expect(bytes.readInt32BE(8)).toBe(10);
    expect(bytes.readInt32BE(12)).toBe(700);
    const loaded = new OffsetIndex(100n, bytes);
    expect(loaded.lookup(111n)).toEqual({ offset: 110n, position: 700 });
    expect(loaded.inconsistency(2000, 200n)).toBeUndefined();
  });

  it('grows past its initial capacity', () => {
    const big = new OffsetIndex(0n);
    for (let i = 1; i <= 1000; i++) big.append(BigInt(i * 3), i * 100);
    expect(big.entryCount).toBe(1000);
    expect(big.lookup(1500n)).toEqual({ offset: 1500n, position: 50_000 });
    expect(big.lookup(1502n)).toEqual({ offset: 1500n, position: 50_000 });
  });

  it('asserts that entries increase', () => {
    const fresh = new OffsetIndex(0n);
    fresh.append(5n, 100);
    expect(() => fresh.append(5n, 200)).toThrow(AssertionError);
    expect(() => fresh.append(6n, 100)).toThrow(AssertionError);
  });

  it('reports entries out of order, past the log, or past the next segment', () => {
    const outOfOrder = Buffer.alloc(16);
    outOfOrder.writeInt32BE(5, 0);
    outOfOrder.writeInt32BE(100, 4);
    outOfOrder.writeInt32BE(3, 8);
    outOfOrder.writeInt32BE(200, 12);
    expect(new OffsetIndex(0n, outOfOrder).inconsistency(1000, undefined)).toMatch(/relative offset 3 after 5/);
    expect(index.inconsistency(1000, undefined)).toMatch(/past the log/);
    expect(index.inconsistency(2000, 120n)).toMatch(/next segment/);
    const zeros = new OffsetIndex(0n, Buffer.alloc(16));
    expect(zeros.inconsistency(1000, undefined)).toMatch(/after 0/);
  });
});

describe('TimeIndex', () => {
  it('keeps only increasing timestamps and finds the entry at or before a timestamp', () => {
    const index = new TimeIndex(50n);
    expect(index.maybeAppend(1000n, 55n)).toBe(true);
    expect(index.maybeAppend(1000n, 60n)).toBe(false);
    expect(index.maybeAppend(900n, 61n)).toBe(false);
    expect(index.maybeAppend(2000n, 70n)).toBe(true);
    expect(index.lookup(999n)).toBeUndefined();
    expect(index.lookup(1000n)).toEqual({ timestamp: 1000n, offset: 55n });
    expect(index.lookup(1999n)).toEqual({ timestamp: 1000n, offset: 55n });
    expect(index.lookup(5000n)).toEqual({ timestamp: 2000n, offset: 70n });
    expect(index.lastEntry()).toEqual({ timestamp: 2000n, offset: 70n });
    const loaded = new TimeIndex(50n, Buffer.from(index.toBytes()));
    expect(loaded.inconsistency(71n)).toBeUndefined();
    expect(loaded.inconsistency(70n)).toMatch(/at or past 70/);
  });
});

describe('index truncation', () => {
  it('drops offset-index entries at or past the truncation offset', () => {
    const index = new OffsetIndex(100n);
    index.append(105n, 300);
    index.append(110n, 700);
    index.append(130n, 1500);
    expect(index.truncateTo(131n)).toBe(0);
    expect(index.truncateTo(110n)).toBe(2);
    expect(index.lastEntry()).toEqual({ offset: 105n, position: 300 });
    expect(index.lookup(1000n)).toEqual({ offset: 105n, position: 300 });
    index.append(108n, 400); // appending continues above the entries kept
    expect(index.truncateTo(0n)).toBe(2);
    expect(index.entryCount).toBe(0);
  });

  it('drops time-index entries at or past the truncation offset', () => {
    const index = new TimeIndex(50n);
    index.maybeAppend(1000n, 55n);
    index.maybeAppend(2000n, 70n);
    index.maybeAppend(3000n, 90n);
    expect(index.truncateTo(70n)).toBe(2);
    expect(index.lastEntry()).toEqual({ timestamp: 1000n, offset: 55n });
    expect(index.maybeAppend(1500n, 60n)).toBe(true);
    expect(index.lookup(5000n)).toEqual({ timestamp: 1500n, offset: 60n });
  });
});
