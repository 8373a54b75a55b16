// Idempotent-producer state of one partition (Kafka's ProducerStateManager + ProducerAppendInfo,
// DESIGN.md section 4): for each producer id that wrote to the partition, its epoch and the
// metadata of its last 5 batches (sequence range, offset range, timestamp).
//
// What it answers:
// - checkAppend / checkAppends (leader, BEFORE assigning offsets): is a producer's batch new and in
//   order (append it), a retry of one of that producer's last 5 batches (answer the original
//   offsets, write nothing), or an error: OUT_OF_ORDER_SEQUENCE_NUMBER (a gap, or a retry older
//   than the last 5 batches), INVALID_PRODUCER_EPOCH (a fenced, older epoch),
//   UNKNOWN_PRODUCER_ID (no state for the producer and a first sequence other than 0).
// - onAppended (leader and followers, AFTER the batch is in the log, for every batch, idempotent
//   or not): records the batch. A follower never checks; it records what its leader wrote, so a
//   new leader starts with the state.
// - removeExpired: drops producers idle for producer.id.expiration.ms.
// - snapshot / ProducerStateManager.fromSnapshot / loadFromSnapshotAndReplay: the building blocks
//   of persistence and of rebuilding after truncation (files: producer-state-snapshot.ts).
//
// Who calls it: the partition log (partition-log.ts, through log-producer-state.ts), inside its
// append queue. Concurrency: none; every method is synchronous except loadFromSnapshotAndReplay,
// which builds a NEW manager and touches no existing one, so the caller swaps it in when it
// completes.
//
// Unknown producers (the one place Kafka changed its mind). Kafka 2.x answered a first batch with
// sequence != 0 from a producer id it had no state for with UNKNOWN_PRODUCER_ID. Since KIP-360
// (Kafka 2.5, so all of Kafka 3) the broker keeps a producer's state until it expires (not just
// while the producer's batches are in the log) and, when it has none, accepts ANY sequence
// (ProducerAppendInfo.checkSequence: "If there is no current producer epoch (possibly because all
// producer records have been deleted due to retention or the DeleteRecords API) accept writes with
// any sequence number"). Kavka follows DESIGN.md: 'reject' (the default) gives UNKNOWN_PRODUCER_ID,
// so a producer that was idle past producer.id.expiration.ms learns its state is gone and resets
// (new epoch or id, sequence 0) instead of silently losing duplicate detection; 'accept' is
// Kafka 3's behaviour for a Kafka-protocol listener.
//
// Time: checks do not consult the clock (nor does Kafka's); an expired producer keeps its state
// until removeExpired runs. lastTimestampMs is the timestamp the caller passed for the producer's
// newest batch: the broker's clock on the leader and on followers, and the batch's max timestamp
// when rebuilding from the log (see replayBatchOf).
//
// Invariants (asserted):
// - every entry has 1..MAX_BATCHES_PER_PRODUCER batches, oldest first, all of one epoch (a new
//   epoch clears the old epoch's batches), with strictly increasing offsets;
// - every recorded offset is below endOffset; onAppended only moves endOffset up.
import { INT32_MAX } from '../util/config-values.js';
import { assert } from '../util/assert.js';
import { KavkaError } from '../util/errors.js';
import { isControl, isTransactional, type BatchHeader } from '../codec/record-batch.js';

/** Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN, the producer's max.in.flight.requests.per.connection cap. */
export const MAX_BATCHES_PER_PRODUCER = 5;
/** Kafka's producer.id.expiration.ms default: one day. */
export const DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000;
export const INT16_MAX = 32_767;

/** What the state manager needs of a batch header. */
export interface ProducerBatchMeta {
  /** -1 (or any negative id): not idempotent, never checked, never recorded. */
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  /** Records - 1 for a producer's batch; the sequence range is baseSequence .. baseSequence + lastOffsetDelta (wrapping). */
  lastOffsetDelta: number;
  isTransactional: boolean;
}

/** One remembered batch of a producer. */
export interface ProducerBatchMetadata {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly firstOffset: bigint;
  readonly lastOffset: bigint;
  readonly timestampMs: number;
}

export interface ProducerStateEntrySnapshot {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  /** Oldest first, 1..MAX_BATCHES_PER_PRODUCER. The newest one's timestamp is the producer's last timestamp. */
  readonly batches: readonly ProducerBatchMetadata[];
}

/** The whole state, as of `endOffset` (every batch below it has been recorded, none at or above). */
export interface ProducerStateSnapshot {
  readonly endOffset: bigint;
  /** Ascending by producerId. */
  readonly producers: readonly ProducerStateEntrySnapshot[];
}

export type AppendCheck = { kind: 'append' } | { kind: 'duplicate'; firstOffset: bigint; lastOffset: bigint };

/** A batch read back from the log while rebuilding. */
export interface ReplayBatch extends ProducerBatchMeta {
  baseOffset: bigint;
  /** The timestamp to record as the producer's last (see replayBatchOf). */
  timestampMs: number;
  /** Control batches (transaction markers) carry no producer state here; they only advance the offset. */
  isControl: boolean;
}

export type UnknownProducerPolicy = 'reject' | 'accept';

export interface ProducerStateOptions {
  /** 'reject' (default, Kafka 2.x, DESIGN.md): UNKNOWN_PRODUCER_ID; 'accept' (Kafka 3, KIP-360): any first sequence. */
  unknownProducerPolicy?: UnknownProducerPolicy;
  /** `<topic>-<partition>`, for error messages. */
  partitionName?: string;
}

export interface RebuildBounds {
  logStartOffset: bigint;
  logEndOffset: bigint;
}

const APPEND: AppendCheck = Object.freeze({ kind: 'append' });

/**
 * Kafka's DefaultRecordBatch.incrementSequence: int32 sequences wrap to 0 after INT32_MAX. Defined
 * for 0 <= sequence, increment <= INT32_MAX (checkAppends rejects anything else from producers;
 * like Kafka it does not throw, so replaying an odd batch from the log cannot stop a load).
 */
export function incrementSequence(sequence: number, increment: number): number {
  if (sequence > INT32_MAX - increment) return increment - (INT32_MAX - sequence) - 1;
  return sequence + increment;
}

/** Is `next` the sequence right after `last` (wrapping)? */
export function inSequence(last: number, next: number): boolean {
  return next === last + 1 || (next === 0 && last === INT32_MAX);
}

export function isIdempotent(batch: Pick<ProducerBatchMeta, 'producerId'>): boolean {
  return batch.producerId >= 0n;
}

export function lastSequenceOf(batch: ProducerBatchMeta): number {
  return incrementSequence(batch.baseSequence, batch.lastOffsetDelta);
}

export function producerBatchMetaOf(header: BatchHeader): ProducerBatchMeta {
  return {
    producerId: header.producerId,
    producerEpoch: header.producerEpoch,
    baseSequence: header.baseSequence,
    lastOffsetDelta: header.lastOffsetDelta,
    isTransactional: isTransactional(header.attributes),
  };
}

/**
 * A batch of the log for loadFromSnapshotAndReplay. The recorded time is the batch's max
 * timestamp (Kafka does the same; for LogAppendTime topics it is the broker's append time), or
 * `fallbackTimestampMs` (the load time: never expires a producer early) when the batch has none.
 */
export function replayBatchOf(header: BatchHeader, fallbackTimestampMs: number): ReplayBatch {
  const max = header.maxTimestamp;
  const timestampMs = max >= 0n && max <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(max) : fallbackTimestampMs;
  return { ...producerBatchMetaOf(header), baseOffset: header.baseOffset, timestampMs, isControl: isControl(header.attributes) };
}

interface Entry {
  readonly producerId: bigint;
  producerEpoch: number;
  batches: ProducerBatchMetadata[];
}

interface Expectation {
  epoch: number;
  lastSeq: number;
  /** Where the expectation comes from, for messages. */
  latest: string;
}

export class ProducerStateManager {
  private readonly entries = new Map<bigint, Entry>();
  private end: bigint;
  private readonly unknownProducerPolicy: UnknownProducerPolicy;
  private readonly where: string;

  /** An empty state as of `endOffset` (a new or empty log: its log end offset). */
  constructor(endOffset = 0n, options: ProducerStateOptions = {}) {
    assert(endOffset >= 0n, `producer state end offset ${endOffset} is negative`);
    this.end = endOffset;
    this.unknownProducerPolicy = options.unknownProducerPolicy ?? 'reject';
    this.where = options.partitionName === undefined ? 'this partition' : options.partitionName;
  }

  /** A manager holding exactly `snapshot` (validated as an invariant: decode checks files). */
  static fromSnapshot(snapshot: ProducerStateSnapshot, options: ProducerStateOptions = {}): ProducerStateManager {
    const manager = new ProducerStateManager(snapshot.endOffset, options);
    let previous: bigint | undefined;
    for (const producer of snapshot.producers) {
      assert(previous === undefined || producer.producerId > previous, `snapshot producers not ascending at ${producer.producerId}`);
      previous = producer.producerId;
      const entry: Entry = { producerId: producer.producerId, producerEpoch: producer.producerEpoch, batches: producer.batches.map((b) => ({ ...b })) };
      manager.checkEntry(entry);
      manager.entries.set(entry.producerId, entry);
    }
    return manager;
  }

  /**
   * Rebuilds the state of a log whose offsets are [logStartOffset, logEndOffset): starts from
   * `snapshot` (the latest one at or below logEndOffset; undefined = from nothing) and records
   * every batch of `batches` that the snapshot does not cover. `batches` must be the log's batches
   * in offset order from max(snapshot.endOffset, logStartOffset) on; batches wholly below that are
   * skipped (so the caller may start at the segment holding that offset), and iteration stops at
   * logEndOffset. Returns a new manager; the caller swaps it in.
   */
  static async loadFromSnapshotAndReplay(
    snapshot: ProducerStateSnapshot | undefined,
    batches: Iterable<ReplayBatch> | AsyncIterable<ReplayBatch>,
    bounds: RebuildBounds,
    options: ProducerStateOptions = {},
  ): Promise<{ manager: ProducerStateManager; replayed: number }> {
    const { logStartOffset, logEndOffset } = bounds;
    assert(logStartOffset >= 0n && logStartOffset <= logEndOffset, `bad log bounds [${logStartOffset}, ${logEndOffset})`);
    assert(snapshot === undefined || snapshot.endOffset <= logEndOffset, `snapshot at ${snapshot?.endOffset} is above the log end offset ${logEndOffset}`);
    const manager = snapshot === undefined ? new ProducerStateManager(logStartOffset, options) : ProducerStateManager.fromSnapshot(snapshot, options);
    if (manager.end < logStartOffset) manager.end = logStartOffset;
    let replayed = 0;
    for await (const batch of batches) {
      const lastOffset = batch.baseOffset + BigInt(batch.lastOffsetDelta);
      if (lastOffset < manager.end) continue;
      if (batch.baseOffset >= logEndOffset) break;
      assert(batch.baseOffset >= manager.end, `replayed batch ${batch.baseOffset}..${lastOffset} straddles the state's end offset ${manager.end}`);
      assert(lastOffset < logEndOffset, `replayed batch ${batch.baseOffset}..${lastOffset} straddles the log end offset ${logEndOffset}`);
      if (batch.isControl) {
        manager.end = lastOffset + 1n;
      } else {
        manager.onAppended(batch, batch.baseOffset, lastOffset, batch.timestampMs);
      }
      replayed += 1;
    }
    manager.end = logEndOffset;
    return { manager, replayed };
  }

  /** Every batch below this offset has been recorded (the log end offset, once the caller kept up). */
  get endOffset(): bigint {
    return this.end;
  }

  get producerCount(): number {
    return this.entries.size;
  }

  /** A copy of one producer's state, or undefined. */
  entry(producerId: bigint): ProducerStateEntrySnapshot | undefined {
    const entry = this.entries.get(producerId);
    return entry === undefined ? undefined : copyEntry(entry);
  }

  /** The broker time of the producer's newest batch, or undefined. */
  lastTimestampMs(producerId: bigint): number | undefined {
    return this.entries.get(producerId)?.batches.at(-1)?.timestampMs;
  }

  /** checkAppends for an append of one batch. */
  checkAppend(batch: ProducerBatchMeta): AppendCheck {
    return this.checkAppends([batch]);
  }

  /**
   * Checks the batches of one append, in order, each against the state as if the earlier ones had
   * been appended. Pure: changes nothing. Returns 'duplicate' (with the original offsets) only for
   * an append of one batch that repeats one of its producer's last 5 batches exactly (same epoch,
   * same first and last sequence); a repeat inside an append of several batches cannot be
   * answered with one offset range and is DUPLICATE_SEQUENCE_NUMBER. Non-idempotent batches pass.
   * Throws KavkaError: INVALID_RECORD, OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH,
   * UNKNOWN_PRODUCER_ID, DUPLICATE_SEQUENCE_NUMBER.
   */
  checkAppends(batches: readonly ProducerBatchMeta[]): AppendCheck {
    const pending = new Map<bigint, Expectation>();
    for (const batch of batches) {
      if (!isIdempotent(batch)) continue;
      this.checkFields(batch);
      const lastSeq = lastSequenceOf(batch);
      const entry = this.entries.get(batch.producerId);
      const earlier = pending.get(batch.producerId);
      if (earlier === undefined && entry !== undefined && entry.producerEpoch === batch.producerEpoch) {
        const original = entry.batches.find((b) => b.firstSeq === batch.baseSequence && b.lastSeq === lastSeq);
        if (original !== undefined) {
          if (batches.length === 1) return { kind: 'duplicate', firstOffset: original.firstOffset, lastOffset: original.lastOffset };
          throw new KavkaError(
            'DUPLICATE_SEQUENCE_NUMBER',
            `producer ${batch.producerId} (epoch ${batch.producerEpoch}) resent sequences ${batch.baseSequence}..${lastSeq} to ${this.where}, ` +
              `already written at offsets ${original.firstOffset}..${original.lastOffset}, inside an append of ${batches.length} batches; retry it alone`,
          );
        }
      }
      const expected = earlier ?? (entry === undefined ? undefined : expectationOf(entry));
      this.checkSequence(batch, lastSeq, expected);
      pending.set(batch.producerId, { epoch: batch.producerEpoch, lastSeq, latest: 'an earlier batch of this append' });
    }
    return APPEND;
  }

  /**
   * Records a batch the log now holds at [firstOffset, lastOffset] (leader after its write, and
   * followers for every batch they copy; no checks: the log is the truth). Call it for every batch,
   * idempotent or not, in offset order, right when the log end offset passes it (inside the append
   * queue, before the next checkAppend). `timestampMs`: the broker's clock.
   */
  onAppended(batch: ProducerBatchMeta, firstOffset: bigint, lastOffset: bigint, timestampMs: number): void {
    assert(firstOffset >= this.end, `batch at ${firstOffset} recorded below the producer state's end offset ${this.end}`);
    assert(lastOffset - firstOffset === BigInt(batch.lastOffsetDelta), `batch ${firstOffset}..${lastOffset} does not span lastOffsetDelta ${batch.lastOffsetDelta}`);
    this.end = lastOffset + 1n;
    if (!isIdempotent(batch)) return;
    assert(Number.isSafeInteger(timestampMs), `timestamp ${timestampMs} is not an integer`);
    const metadata: ProducerBatchMetadata = {
      firstSeq: batch.baseSequence,
      lastSeq: lastSequenceOf(batch),
      firstOffset,
      lastOffset,
      timestampMs,
    };
    const entry = this.entries.get(batch.producerId);
    if (entry === undefined) {
      this.entries.set(batch.producerId, { producerId: batch.producerId, producerEpoch: batch.producerEpoch, batches: [metadata] });
      return;
    }
    if (entry.producerEpoch !== batch.producerEpoch) {
      // Kafka's ProducerStateEntry.maybeUpdateProducerEpoch: a new epoch forgets the old one's batches.
      entry.producerEpoch = batch.producerEpoch;
      entry.batches = [];
    }
    entry.batches.push(metadata);
    if (entry.batches.length > MAX_BATCHES_PER_PRODUCER) entry.batches.shift();
  }

  /**
   * Drops producers whose newest batch's timestamp is `expirationMs` or more before `nowMs`
   * (Kafka: currentTimeMs - lastTimestamp >= producer.id.expiration.ms). Returns their ids.
   */
  removeExpired(nowMs: number, expirationMs: number = DEFAULT_PRODUCER_ID_EXPIRATION_MS): bigint[] {
    assert(Number.isSafeInteger(expirationMs) && expirationMs > 0, `producer.id.expiration.ms ${expirationMs} must be a positive integer`);
    const removed: bigint[] = [];
    for (const [producerId, entry] of this.entries) {
      const last = entry.batches[entry.batches.length - 1];
      if (nowMs - last.timestampMs >= expirationMs) removed.push(producerId);
    }
    for (const producerId of removed) this.entries.delete(producerId);
    return removed;
  }

  /** An immutable copy of the whole state (producers ascending by id), for a snapshot file or a comparison. */
  snapshot(): ProducerStateSnapshot {
    const producers = [...this.entries.values()].sort((a, b) => (a.producerId < b.producerId ? -1 : a.producerId > b.producerId ? 1 : 0)).map(copyEntry);
    return Object.freeze({ endOffset: this.end, producers: Object.freeze(producers) });
  }

  private checkFields(batch: ProducerBatchMeta): void {
    const who = `producer ${batch.producerId}`;
    if (batch.isTransactional) {
      throw new KavkaError('INVALID_RECORD', `${who} sent a transactional batch to ${this.where}; Kavka supports idempotent producers, not transactions`);
    }
    if (!Number.isInteger(batch.producerEpoch) || batch.producerEpoch < 0 || batch.producerEpoch > INT16_MAX) {
      throw new KavkaError('INVALID_RECORD', `${who} sent producer epoch ${batch.producerEpoch}; an idempotent batch has an epoch in 0..${INT16_MAX}`);
    }
    if (!Number.isInteger(batch.baseSequence) || batch.baseSequence < 0 || batch.baseSequence > INT32_MAX) {
      throw new KavkaError('INVALID_RECORD', `${who} sent base sequence ${batch.baseSequence}; an idempotent batch has a sequence in 0..${INT32_MAX}`);
    }
    if (!Number.isInteger(batch.lastOffsetDelta) || batch.lastOffsetDelta < 0 || batch.lastOffsetDelta > INT32_MAX) {
      throw new KavkaError('INVALID_RECORD', `${who} sent a batch with last offset delta ${batch.lastOffsetDelta}`);
    }
  }

  private checkSequence(batch: ProducerBatchMeta, lastSeq: number, expected: Expectation | undefined): void {
    const who = `producer ${batch.producerId}`;
    const range = `sequences ${batch.baseSequence}..${lastSeq}`;
    if (expected === undefined) {
      if (batch.baseSequence !== 0 && this.unknownProducerPolicy === 'reject') {
        throw new KavkaError(
          'UNKNOWN_PRODUCER_ID',
          `${this.where} has no state for ${who} (never seen, or expired after producer.id.expiration.ms), ` +
            `and its first batch has ${range} (epoch ${batch.producerEpoch}); a producer without state must start at sequence 0`,
        );
      }
      return;
    }
    if (batch.producerEpoch < expected.epoch) {
      throw new KavkaError(
        'INVALID_PRODUCER_EPOCH',
        `${who} sent epoch ${batch.producerEpoch} to ${this.where}, which already has epoch ${expected.epoch} for it: this producer is fenced`,
      );
    }
    if (batch.producerEpoch > expected.epoch) {
      if (batch.baseSequence !== 0) {
        throw new KavkaError(
          'OUT_OF_ORDER_SEQUENCE_NUMBER',
          `${who} moved from epoch ${expected.epoch} to ${batch.producerEpoch} on ${this.where} with ${range}; a new epoch must start at sequence 0`,
        );
      }
      return;
    }
    if (!inSequence(expected.lastSeq, batch.baseSequence)) {
      const next = incrementSequence(expected.lastSeq, 1);
      throw new KavkaError(
        'OUT_OF_ORDER_SEQUENCE_NUMBER',
        `${who} (epoch ${batch.producerEpoch}) sent ${range} to ${this.where}: expected first sequence ${next}, received ${batch.baseSequence} ` +
          `(last sequence ${expected.lastSeq} of ${expected.latest}; a retry matches only one of the last ${MAX_BATCHES_PER_PRODUCER} batches exactly)`,
      );
    }
  }

  private checkEntry(entry: Entry): void {
    assert(entry.producerId >= 0n, `producer state for non-idempotent producer id ${entry.producerId}`);
    assert(entry.batches.length >= 1 && entry.batches.length <= MAX_BATCHES_PER_PRODUCER, `producer ${entry.producerId} has ${entry.batches.length} batches`);
    let previous: ProducerBatchMetadata | undefined;
    for (const batch of entry.batches) {
      assert(batch.firstOffset <= batch.lastOffset && batch.lastOffset < this.end, `producer ${entry.producerId} batch ${batch.firstOffset}..${batch.lastOffset} outside [0, ${this.end})`);
      assert(previous === undefined || previous.lastOffset < batch.firstOffset, `producer ${entry.producerId} batches out of offset order at ${batch.firstOffset}`);
      previous = batch;
    }
  }
}

function expectationOf(entry: Entry): Expectation {
  const latest = entry.batches[entry.batches.length - 1];
  return { epoch: entry.producerEpoch, lastSeq: latest.lastSeq, latest: `the latest batch at offsets ${latest.firstOffset}..${latest.lastOffset}` };
}

function copyEntry(entry: Entry): ProducerStateEntrySnapshot {
  return Object.freeze({
    producerId: entry.producerId,
    producerEpoch: entry.producerEpoch,
    batches: Object.freeze(entry.batches.map((b) => Object.freeze({ ...b }))),
  });
}
