// One segment of a partition log: `<baseOffset, 20 digits>.log` holds record batches back to
// back; `.index` and `.timeindex` are its sparse offset and time indexes (offset-index.ts,
// time-index.ts), kept in memory and written when the segment is sealed or the log closes.
//
// Invariants:
// - `size` is the byte length of whole batches in the .log; writes complete before `size` moves,
//   so [0, size) is always readable as whole batches (a reader that saw `size` may read up to it).
// - Every batch's base offset is >= the segment's base offset and above the previous batch's last
//   offset; offsets need not be consecutive (compaction leaves gaps).
// - Positions and relative offsets fit an int32 (the log rolls before they would not).
//
// Called by PartitionLog (appends and reads) and the log loader (recovery). Reads may overlap
// appends: they see the batches below the `end` their caller snapshotted.
import { join } from 'node:path';
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, isBatchCrcValid, lastOffsetOf, readBatchHeader, scanBatches, type BatchHeader } from '../codec/record-batch.js';
import { assert } from '../util/assert.js';
import { KavkaError } from '../util/errors.js';
import { writeFileAtomic } from './atomic-file.js';
import { INT32_MAX } from './log-config.js';
import { OFFSET_INDEX_ENTRY_SIZE, OffsetIndex } from './offset-index.js';
import { isNotFound, readAt, readFileIfExists, type StorageFile, type StorageFs } from './storage-fs.js';
import { TIME_INDEX_ENTRY_SIZE, TimeIndex } from './time-index.js';

export const LOG_FILE_SUFFIX = '.log';
export const INDEX_FILE_SUFFIX = '.index';
export const TIME_INDEX_FILE_SUFFIX = '.timeindex';
const SEGMENT_NAME_DIGITS = 20;
const SEGMENT_LOG_NAME = /^(\d{20})\.log$/;

/** Header reads during a forward scan from an index entry are done in blocks of this size. */
const HEADER_SCAN_BLOCK_BYTES = 16 * 1024;
/** Recovery reads the .log in chunks of this size (or one batch, when a batch is larger). */
const RECOVERY_CHUNK_BYTES = 1024 * 1024;
const EMPTY: Buffer = Buffer.alloc(0);

export function segmentFileName(baseOffset: bigint, suffix: string): string {
  return baseOffset.toString().padStart(SEGMENT_NAME_DIGITS, '0') + suffix;
}

/** The base offset of a `.log` file name, or undefined for any other name. */
export function parseSegmentLogName(fileName: string): bigint | undefined {
  const match = SEGMENT_LOG_NAME.exec(fileName);
  return match === null ? undefined : BigInt(match[1]);
}

/**
 * Bytes read back from a segment are not what was written: a batch that fails its CRC-32C, or
 * framing that does not fit the file. PartitionLog's reader (log-reads.ts) turns it into an
 * offline log dir (LogDirHealth.corrupt) when it happens while serving.
 */
export class CorruptBatchError extends KavkaError {
  constructor(
    readonly file: string,
    readonly position: number,
    /** The offset the batch should start at (one past the batch before it: its own header may be the damaged part); undefined when not known. */
    readonly offset: bigint | undefined,
    readonly detail: string,
  ) {
    super('KAFKA_STORAGE_ERROR', `${file} is corrupt at position ${position}${offset === undefined ? '' : ` (offset ${offset})`}: ${detail}`);
  }
}

export interface BatchLocation {
  position: number;
  size: number;
  header: BatchHeader;
}

export interface SegmentRead {
  batches: Buffer;
  nextOffset: bigint;
}

/** Where and how truncation cuts a segment (planCut), applied by applyCut. */
export interface SegmentCut {
  /** The .log is cut here: the start of the first batch whose last offset is >= the truncation offset (the size when none is). */
  position: number;
  /** One past the last offset of the last batch kept; the segment's base offset when none is kept. */
  endOffset: bigint;
  /** The position of the last offset-index entry kept (0 when none is): the batches from here to `position` were walked. */
  tailFrom: number;
  /** The largest max-timestamp among the walked batches (-1 when none) and the last offset of the first batch reaching it. */
  tailMaxTimestamp: bigint;
  tailOffsetOfMaxTimestamp: bigint;
}

export interface ScanOptions {
  from: number;
  fileSize: number;
  /** The lowest base offset the first batch may have. */
  expectedFirstOffset: bigint;
  /** Offsets must stay below this (the next segment's base offset), when known. */
  offsetLimit: bigint | undefined;
  visit: (batch: BatchLocation) => void;
}

export interface ScanOutcome {
  /** End of the last whole, valid batch. */
  validEnd: number;
  /** Where and why the scan stopped before the end of the file; undefined when all of it is valid. */
  invalid: { position: number; reason: string } | undefined;
  lastOffset: bigint | undefined;
}

export class LogSegment {
  readonly logPath: string;
  readonly indexPath: string;
  readonly timeIndexPath: string;
  /** Bytes of whole batches in the .log (see the invariants above). */
  size = 0;
  offsetIndex: OffsetIndex;
  timeIndex: TimeIndex;
  /** Largest batch max-timestamp so far, -1 when none, and the last offset of the first batch that reached it. */
  maxTimestampSoFar = -1n;
  offsetOfMaxTimestampSoFar: bigint;
  /**
   * Wall-clock ms from which segment.ms counts: the broker time of the segment's first append, or
   * after a restart the first batch's max-timestamp (Kafka's rule) capped at the load time.
   * undefined while the segment is empty.
   */
  rollBaseMs: number | undefined;
  /** Wall-clock ms of the last append (the file's mtime after a restart): retention's fallback when batches carry no timestamps. */
  lastModifiedMs: number;
  private bytesSinceLastIndexEntry = 0;

  private constructor(
    readonly baseOffset: bigint,
    readonly directory: string,
    readonly file: StorageFile,
    lastModifiedMs: number,
  ) {
    this.logPath = join(directory, segmentFileName(baseOffset, LOG_FILE_SUFFIX));
    this.indexPath = join(directory, segmentFileName(baseOffset, INDEX_FILE_SUFFIX));
    this.timeIndexPath = join(directory, segmentFileName(baseOffset, TIME_INDEX_FILE_SUFFIX));
    this.offsetIndex = new OffsetIndex(baseOffset);
    this.timeIndex = new TimeIndex(baseOffset);
    this.offsetOfMaxTimestampSoFar = baseOffset;
    this.lastModifiedMs = lastModifiedMs;
  }

  /** Creates a new, empty segment file. The caller syncs the directory. */
  static async create(fs: StorageFs, directory: string, baseOffset: bigint, nowMs: number): Promise<LogSegment> {
    const file = await fs.open(join(directory, segmentFileName(baseOffset, LOG_FILE_SUFFIX)), 'createNew');
    return new LogSegment(baseOffset, directory, file, nowMs);
  }

  /** Opens an existing segment; `size` is the file's size until recovery says otherwise. */
  static async open(fs: StorageFs, directory: string, baseOffset: bigint): Promise<LogSegment> {
    const path = join(directory, segmentFileName(baseOffset, LOG_FILE_SUFFIX));
    const stat = await fs.stat(path);
    const file = await fs.open(path, 'readWrite');
    const segment = new LogSegment(baseOffset, directory, file, stat?.mtimeMs ?? 0);
    try {
      segment.size = await file.size();
    } catch (error) {
      await file.close().catch(() => undefined);
      throw error;
    }
    return segment;
  }

  /** The timestamp retention compares: the largest record timestamp, else the last modification. */
  largestTimestampMs(): number {
    return this.maxTimestampSoFar >= 0n ? Number(this.maxTimestampSoFar) : this.lastModifiedMs;
  }

  /**
   * Bookkeeping for one batch just written (or found by recovery) at `position` == size: moves
   * `size`, tracks the max timestamp, adds index entries every indexIntervalBytes. No I/O.
   */
  recordBatch(position: number, size: number, lastOffset: bigint, maxTimestamp: bigint, indexIntervalBytes: number): void {
    assert(position === this.size, `batch at ${position} follows the segment's ${this.size} bytes`);
    if (maxTimestamp > this.maxTimestampSoFar) {
      this.maxTimestampSoFar = maxTimestamp;
      this.offsetOfMaxTimestampSoFar = lastOffset;
    }
    if (this.bytesSinceLastIndexEntry > indexIntervalBytes) {
      this.offsetIndex.append(lastOffset, position);
      this.timeIndex.maybeAppend(this.maxTimestampSoFar, this.offsetOfMaxTimestampSoFar);
      this.bytesSinceLastIndexEntry = 0;
    }
    this.bytesSinceLastIndexEntry += size;
    this.size = position + size;
  }

  /** Forgets the indexes and size before recovery replays the .log through recordBatch. */
  resetForRebuild(): void {
    this.offsetIndex.clear();
    this.timeIndex.clear();
    this.size = 0;
    this.bytesSinceLastIndexEntry = 0;
    this.maxTimestampSoFar = -1n;
    this.offsetOfMaxTimestampSoFar = this.baseOffset;
  }

  /**
   * Plans removing every batch whose last offset is >= `offset` from the first `end` bytes: finds
   * the cut, and walks the headers kept after the last offset-index entry kept, so that applyCut
   * restores the segment's max timestamp exactly. Reads only; changes nothing.
   */
  async planCut(offset: bigint, end: number): Promise<SegmentCut> {
    const from = this.offsetIndex.lookup(offset).position;
    const first = await this.findBatch(from, end, (header) => lastOffsetOf(header) >= offset);
    const position = first?.position ?? end;
    const tailFrom = offset > this.baseOffset ? this.offsetIndex.lookup(offset - 1n).position : 0;
    assert(tailFrom <= position, `the last index entry kept (position ${tailFrom}) lies before the cut at ${position}`);
    let lastKept: bigint | undefined;
    let tailMaxTimestamp = -1n;
    let tailOffsetOfMaxTimestamp = this.baseOffset;
    await this.findBatch(tailFrom, position, (header) => {
      lastKept = lastOffsetOf(header);
      if (header.maxTimestamp > tailMaxTimestamp) {
        tailMaxTimestamp = header.maxTimestamp;
        tailOffsetOfMaxTimestamp = lastKept;
      }
      return false;
    });
    assert(position === 0 || lastKept !== undefined, `a cut at ${position} keeps a batch`);
    const endOffset = lastKept === undefined ? this.baseOffset : lastKept + 1n;
    return { position, endOffset, tailFrom, tailMaxTimestamp, tailOffsetOfMaxTimestamp };
  }

  /**
   * The in-memory half of a cut planned by planCut(offset): size, indexes, max timestamp,
   * index-interval accounting and roll base. The caller truncates the file (after the reads that
   * may still read past the cut are done). No I/O.
   */
  applyCut(offset: bigint, cut: SegmentCut, nowMs: number): void {
    assert(cut.position <= this.size, `cut at ${cut.position} lies within the segment's ${this.size} bytes`);
    this.offsetIndex.truncateTo(offset);
    this.timeIndex.truncateTo(offset);
    assert((this.offsetIndex.lastEntry()?.position ?? 0) === cut.tailFrom, `the last offset-index entry kept is at ${cut.tailFrom}`);
    // Every batch up to the last index entry kept is covered by a time-index entry kept; the walked tail covers the rest.
    const last = this.timeIndex.lastEntry();
    this.maxTimestampSoFar = last?.timestamp ?? -1n;
    this.offsetOfMaxTimestampSoFar = last?.offset ?? this.baseOffset;
    if (cut.tailMaxTimestamp > this.maxTimestampSoFar) {
      this.maxTimestampSoFar = cut.tailMaxTimestamp;
      this.offsetOfMaxTimestampSoFar = cut.tailOffsetOfMaxTimestamp;
    }
    this.bytesSinceLastIndexEntry = cut.position - cut.tailFrom;
    this.size = cut.position;
    if (this.size === 0) this.rollBaseMs = undefined;
    this.lastModifiedMs = nowMs;
  }

  /** Adds the final time-index entry so the segment's largest timestamp survives a restart. */
  sealTimeIndex(): void {
    this.timeIndex.maybeAppend(this.maxTimestampSoFar, this.offsetOfMaxTimestampSoFar);
  }

  /** Writes both index files atomically (temp, fdatasync, rename). The caller syncs the directory. */
  async writeIndexFiles(fs: StorageFs): Promise<void> {
    await writeFileAtomic(fs, this.indexPath, this.offsetIndex.toBytes(), { syncDirectory: false });
    await writeFileAtomic(fs, this.timeIndexPath, this.timeIndex.toBytes(), { syncDirectory: false });
  }

  /**
   * Unlinks the segment's files (already gone ones are skipped), the .log first: once it is gone
   * the loader deletes orphan indexes. The caller syncs the directory and closes the descriptor.
   */
  async unlinkFiles(fs: StorageFs): Promise<void> {
    for (const path of [this.logPath, this.indexPath, this.timeIndexPath]) {
      try {
        await fs.unlink(path);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
  }

  /**
   * Loads both index files and checks them against the .log's `size` and `offsetLimit` (the next
   * segment's base offset, when known). Returns why they cannot be used, or undefined when they
   * are loaded.
   */
  async loadIndexFiles(fs: StorageFs, offsetLimit: bigint | undefined): Promise<string | undefined> {
    const indexBytes = await readFileIfExists(fs, this.indexPath);
    const timeIndexBytes = await readFileIfExists(fs, this.timeIndexPath);
    if (indexBytes === undefined) return `${this.indexPath} is missing`;
    if (timeIndexBytes === undefined) return `${this.timeIndexPath} is missing`;
    if (indexBytes.length % OFFSET_INDEX_ENTRY_SIZE !== 0) return `${this.indexPath} has ${indexBytes.length} bytes, not whole ${OFFSET_INDEX_ENTRY_SIZE}-byte entries`;
    if (timeIndexBytes.length % TIME_INDEX_ENTRY_SIZE !== 0) return `${this.timeIndexPath} has ${timeIndexBytes.length} bytes, not whole ${TIME_INDEX_ENTRY_SIZE}-byte entries`;
    const offsetIndex = new OffsetIndex(this.baseOffset, indexBytes);
    const timeIndex = new TimeIndex(this.baseOffset, timeIndexBytes);
    const offsetProblem = offsetIndex.inconsistency(this.size, offsetLimit);
    if (offsetProblem !== undefined) return `${this.indexPath}: ${offsetProblem}`;
    const timeProblem = timeIndex.inconsistency(offsetLimit);
    if (timeProblem !== undefined) return `${this.timeIndexPath}: ${timeProblem}`;
    this.offsetIndex = offsetIndex;
    this.timeIndex = timeIndex;
    this.bytesSinceLastIndexEntry = 0;
    const last = timeIndex.lastEntry();
    this.maxTimestampSoFar = last?.timestamp ?? -1n;
    this.offsetOfMaxTimestampSoFar = last?.offset ?? this.baseOffset;
    return undefined;
  }

  /** Exactly `length` bytes at `position`; a shorter file is corruption (someone cut it). */
  async readExact(position: number, length: number): Promise<Buffer> {
    const data = await readAt(this.file, position, length);
    if (data.length < length) throw this.corruption(position, `the file ends at ${position + data.length}, before the ${length} bytes expected there`);
    return data;
  }

  /** Walks batch headers from `startPosition` (a batch start) up to `end`; returns the first batch `accept` takes. */
  async findBatch(startPosition: number, end: number, accept: (header: BatchHeader) => boolean): Promise<BatchLocation | undefined> {
    for await (const batch of this.batchHeaders(startPosition, end)) {
      if (accept(batch.header)) return batch;
    }
    return undefined;
  }

  /**
   * The batches from `startPosition` (a batch start) up to `end`, in order, headers only (read in
   * blocks; no CRC check: the batches were checked when written and by recovery). Throws
   * KAFKA_STORAGE_ERROR when the framing does not fit `end`.
   */
  async *batchHeaders(startPosition: number, end: number): AsyncGenerator<BatchLocation> {
    let block: Buffer = EMPTY;
    let blockStart = startPosition;
    let position = startPosition;
    while (position < end) {
      if (position + BATCH_HEADER_SIZE > blockStart + block.length) {
        if (end - position < BATCH_HEADER_SIZE) throw this.corruption(position, `${end - position} bytes left, less than a batch header`);
        blockStart = position;
        block = await this.readExact(position, Math.min(HEADER_SCAN_BLOCK_BYTES, end - position));
      }
      const header = readBatchHeader(block, position - blockStart);
      const size = header.batchLength + LOG_OVERHEAD;
      if (size < BATCH_HEADER_SIZE || position + size > end) throw this.corruption(position, `batch length ${header.batchLength} does not fit the segment's ${end} bytes`);
      yield { position, size, header };
      position += size;
    }
  }

  /**
   * Whole batches from the first one whose last offset is >= fetchOffset, below `end`, up to
   * maxBytes (the first batch even if larger when minOneBatch), only batches whose last offset is
   * below maxOffset. undefined when no batch in [0, end) ends at or after fetchOffset.
   */
  async read(fetchOffset: bigint, maxBytes: number, maxOffset: bigint, minOneBatch: boolean, end: number): Promise<SegmentRead | undefined> {
    const start = this.offsetIndex.lookup(fetchOffset).position;
    assert(start <= end, `index entry for ${fetchOffset} (position ${start}) lies within the ${end} bytes read`);
    const first = await this.findBatch(start, end, (header) => lastOffsetOf(header) >= fetchOffset);
    if (first === undefined) return undefined;
    const empty: SegmentRead = { batches: EMPTY, nextOffset: fetchOffset };
    if (lastOffsetOf(first.header) >= maxOffset) {
      // Rare (a high watermark inside a batch), or a damaged offset field: check before answering nothing.
      if (!isBatchCrcValid(await this.readExact(first.position, first.size))) throw new CorruptBatchError(this.logPath, first.position, undefined, 'the batch does not match its CRC-32C');
      return empty;
    }
    if (first.size > maxBytes && !minOneBatch) return empty;
    const data = await this.readExact(first.position, Math.min(end - first.position, Math.max(maxBytes, first.size)));
    // Cut at the last whole batch below maxOffset; the read may end inside the next batch.
    // Every batch served is checked against its CRC first (STYLE.md: once written, again read).
    let cut = 0;
    let nextOffset = fetchOffset;
    let expectedBase = first.header.baseOffset;
    while (cut + BATCH_HEADER_SIZE <= data.length) {
      const size = data.readInt32BE(cut + 8) + LOG_OVERHEAD;
      if (size < BATCH_HEADER_SIZE || cut + size > data.length) break;
      // Before its offsets are believed: a damaged lastOffsetDelta must not hide the batch behind maxOffset.
      if (!isBatchCrcValid(data.subarray(cut, cut + size))) throw new CorruptBatchError(this.logPath, first.position + cut, expectedBase, 'the batch does not match its CRC-32C');
      const lastOffset = data.readBigInt64BE(cut) + BigInt(data.readInt32BE(cut + 23));
      if (lastOffset >= maxOffset) break;
      cut += size;
      nextOffset = lastOffset + 1n;
      expectedBase = nextOffset;
    }
    assert(cut >= first.size, `the first batch at ${first.position} is returned whole`);
    return { batches: data.subarray(0, cut), nextOffset };
  }

  /**
   * Reads the .log from `from` to `fileSize`, checking framing, magic, CRC-32C and offset order,
   * and calls `visit` for each valid batch in order. Stops at the first invalid or incomplete
   * batch. Recovery decides what a stop means (truncate the active segment, refuse a sealed one).
   */
  async scan(options: ScanOptions): Promise<ScanOutcome> {
    const { fileSize, offsetLimit, visit } = options;
    let position = options.from;
    let expectedNext = options.expectedFirstOffset;
    let lastOffset: bigint | undefined;
    let wanted = RECOVERY_CHUNK_BYTES;
    while (position < fileSize) {
      const chunkStart = position;
      const requested = Math.min(wanted, fileSize - chunkStart);
      const chunk = await readAt(this.file, chunkStart, requested);
      const scan = scanBatches(chunk, { verifyCrc: true });
      for (const batch of scan.batches) {
        const batchPosition = chunkStart + batch.position;
        const problem = this.offsetProblem(batch.header, expectedNext, offsetLimit);
        if (problem !== undefined) return { validEnd: batchPosition, invalid: { position: batchPosition, reason: problem }, lastOffset };
        visit({ position: batchPosition, size: batch.size, header: batch.header });
        lastOffset = lastOffsetOf(batch.header);
        expectedNext = lastOffset + 1n;
      }
      position = chunkStart + scan.validBytes;
      wanted = RECOVERY_CHUNK_BYTES;
      if (scan.stop.kind === 'end') {
        if (chunk.length === 0) break; // the file shrank under us; what is there has been seen
        continue;
      }
      if (scan.stop.kind === 'corrupt') return { validEnd: position, invalid: { position, reason: scan.stop.reason }, lastOffset };
      if (chunk.length < requested || chunkStart + chunk.length >= fileSize) return { validEnd: position, invalid: { position, reason: `incomplete batch at the end of the file: ${scan.stop.reason}` }, lastOffset };
      // The chunk ended inside a batch: read again from the batch's start, large enough for it.
      const rest = chunk.subarray(scan.validBytes);
      if (rest.length >= LOG_OVERHEAD) wanted = Math.max(wanted, rest.readInt32BE(8) + LOG_OVERHEAD);
    }
    return { validEnd: position, invalid: undefined, lastOffset };
  }

  private offsetProblem(header: BatchHeader, expectedNext: bigint, offsetLimit: bigint | undefined): string | undefined {
    const lastOffset = lastOffsetOf(header);
    if (header.baseOffset < expectedNext) return `base offset ${header.baseOffset} is below ${expectedNext}: offsets go backwards`;
    if (lastOffset - this.baseOffset > BigInt(INT32_MAX)) return `last offset ${lastOffset} is too far above the segment's base offset ${this.baseOffset}`;
    if (offsetLimit !== undefined && lastOffset >= offsetLimit) return `last offset ${lastOffset} reaches the next segment's base offset ${offsetLimit}`;
    return undefined;
  }

  corruption(position: number, reason: string): CorruptBatchError {
    return new CorruptBatchError(this.logPath, position, undefined, reason);
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/** The index of the last segment whose base offset is <= offset (0 when none is). */
export function segmentIndexFor(segments: readonly LogSegment[], offset: bigint): number {
  let low = 0;
  let high = segments.length - 1;
  let found = 0;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    if (segments[middle].baseOffset <= offset) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}
