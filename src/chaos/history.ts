// A workload history and its checker (DESIGN.md section 8): every produce operation of a run with
// its outcome, every read of a partition, and the properties a replicated log keeps whatever
// faults the run injected. Used by the replication fault tests and by `npm run chaos`.
//
// Recording. Each produce is one operation: a producer, a partition, the unique values it sends,
// the acks it asks for, and its outcome:
//   ok       the broker acknowledged it; the values hold offsets baseOffset, baseOffset+1, ...
//   failed   definitely not written (refused before the append: NOT_ENOUGH_REPLICAS, a leader
//            that is not the leader, an invalid request)
//   unknown  may or may not be kept (a timeout, a lost connection, NOT_LEADER_OR_FOLLOWER or
//            NOT_ENOUGH_REPLICAS_AFTER_APPEND while acks=all waited, a client that retried);
//            an operation that never completed counts as unknown
// Times are logical (one counter for the whole history, ticked on every event), so "A was
// acknowledged before B was invoked" is exact within the one process that runs the workload.
// A read is an observation: which records one source (the leader's Fetch, one replica's log)
// holds in a range of offsets that it covers completely.
//
// Checking (checkHistory, pure, one pass per partition):
//   lost             an acks=all record acknowledged at offset o is not at o in a final read
//   conflict         two sources (or an acknowledgement and a source) give one offset two records
//   order            a record acknowledged before another was invoked sits at a higher offset, or
//                    an ordered producer's records do not keep its order
//   duplicate        a value of a producer that must not duplicate is at two offsets
//   phantom          a value read that no operation produced (or produced to another partition)
//   failed-visible   a value whose produce definitely failed is read
//   acked-while-unavailable  an acks=all produce invoked and acknowledged inside a window in which
//                    the partition could not have had min.insync.replicas replicas
// Replica logs are compared byte for byte below their high watermarks (compareReplicaLogs) and
// reported as replicas-differ.
//
import * as grpc from '@grpc/grpc-js';
import { decodeRecordBatch, scanBatches } from '../codec/record-batch.js';
import { readErrorInfo } from '../proto/index.js';
import type { Producer } from '../client/index.js';
import type { KavkaClient } from '../gen/kavka/v1/Kavka.js';

// ------------------------------------------------------------------ the history

export type Acks = -1 | 0 | 1;

export type Outcome = { kind: 'ok'; baseOffset: bigint } | { kind: 'failed'; error: string } | { kind: 'unknown'; error: string };

export interface ProduceOp {
  readonly id: number;
  readonly producer: string;
  readonly topic: string;
  readonly partition: number;
  readonly values: readonly string[];
  readonly acks: Acks;
  /** The node the request went to, when the producer picks it (the raw producer). */
  readonly node: number | undefined;
  readonly invokedAt: number;
  /** Undefined while in flight (and for ever, if it never completed: then it is unknown). */
  completedAt: number | undefined;
  outcome: Outcome | undefined;
}

export interface ProducerOptions {
  /**
   * No value of this producer may appear at two offsets: an idempotent producer, or one that
   * never sends a value twice (the raw producer). Off for a producer that retries without
   * idempotence, or whose idempotent epoch was bumped (Kafka may then duplicate a batch).
   */
  noDuplicates: boolean;
  /** Its acknowledged records of one partition keep the order it invoked them in. */
  ordered: boolean;
}

export interface ReadRecord {
  offset: bigint;
  /** The record's value as UTF-8; null for a null value. */
  value: string | null;
}

export interface Observation {
  /** Who was read, e.g. 'leader 2 (final)', 'node 3 log'. */
  source: string;
  topic: string;
  partition: number;
  /** The source's records cover [from, to): an offset in it with no record is absent there. */
  from: bigint;
  to: bigint;
  records: ReadRecord[];
  /** Taken after the run, once converged: acknowledged records in [from, to) must be here. */
  final: boolean;
  at: number;
}

/**
 * A stretch of the run in which acks=all produce to the partition could not succeed: at all, or
 * (with `node`) when sent to that node (e.g. an isolated leader).
 */
export interface UnavailableWindow {
  topic: string;
  partition: number;
  node?: number;
  from: number;
  to: number;
  reason: string;
}

export type Property =
  | 'lost'
  | 'conflict'
  | 'order'
  | 'duplicate'
  | 'phantom'
  | 'failed-visible'
  | 'acked-while-unavailable'
  | 'replicas-differ'
  | 'not-consumed'
  | 'consumer-order';

/** A consumer reading assigned partitions from a start offset (at-least-once coverage is checked). */
export interface ConsumerSpec {
  topic: string;
  partitions: readonly number[];
  /** The offset it starts every partition at. */
  from: bigint;
}

/** What one consumer was handed for one partition, in delivery order. */
export interface Consumption {
  consumer: string;
  topic: string;
  partition: number;
  records: ReadRecord[];
}

/** A fault the run injected (or healed), for the report and for linking violations to logs. */
export interface FaultEvent {
  at: number;
  wallMs: number;
  description: string;
  nodes: number[];
}

export interface Violation {
  property: Property;
  topic: string;
  partition: number;
  offset?: bigint;
  value?: string;
  detail: string;
}

export class History {
  private clock = 0;
  private nextId = 0;
  private nextValue = 0;
  private readonly used = new Set<string>();
  readonly ops: ProduceOp[] = [];
  readonly observations: Observation[] = [];
  readonly windows: UnavailableWindow[] = [];
  readonly producers = new Map<string, ProducerOptions>();
  readonly consumers = new Map<string, ConsumerSpec>();
  readonly consumptions = new Map<string, Consumption>();
  readonly faults: FaultEvent[] = [];
  /** Wall-clock milliseconds of each logical tick (index = tick), for linking to node logs. */
  private readonly wall: number[] = [0];

  constructor(private readonly wallClock: () => number = Date.now) {}

  /** Ticks the logical clock. */
  now(): number {
    this.wall.push(this.wallClock());
    return ++this.clock;
  }

  /** The wall-clock time of a logical tick. */
  wallTime(tick: number): number {
    return this.wall[Math.max(0, Math.min(tick, this.wall.length - 1))];
  }

  /** Records a fault the run injected or healed. */
  fault(description: string, nodes: number[] = []): FaultEvent {
    const at = this.now();
    const event = { at, wallMs: this.wallTime(at), description, nodes: [...nodes] };
    this.faults.push(event);
    return event;
  }

  addConsumer(name: string, spec: ConsumerSpec): void {
    if (this.consumers.has(name)) throw new Error(`consumer ${name} is already in the history`);
    this.consumers.set(name, { ...spec, partitions: [...spec.partitions] });
  }

  /**
   * Records records a consumer was handed for one partition, in delivery order. They also count
   * as an observation (not final) of what the partition holds.
   */
  consumed(consumer: string, topic: string, partition: number, records: readonly ReadRecord[]): void {
    if (!this.consumers.has(consumer)) throw new Error(`no consumer ${consumer} in the history`);
    if (records.length === 0) return;
    const key = `${consumer}\u0000${partitionKey(topic, partition)}`;
    let consumption = this.consumptions.get(key);
    if (consumption === undefined) this.consumptions.set(key, (consumption = { consumer, topic, partition, records: [] }));
    consumption.records.push(...records);
    const last = records[records.length - 1].offset;
    this.observe({ source: `consumer ${consumer}`, topic, partition, from: records[0].offset, to: last + 1n, records: [...records], final: false });
  }

  addProducer(name: string, options: ProducerOptions): void {
    if (this.producers.has(name)) throw new Error(`producer ${name} is already in the history`);
    this.producers.set(name, { ...options });
  }

  producer(name: string): ProducerOptions {
    const options = this.producers.get(name);
    if (options === undefined) throw new Error(`no producer ${name} in the history`);
    return options;
  }

  /** A value no other operation of this history uses. */
  freshValue(producer: string): string {
    return `${producer}:${this.nextValue++}`;
  }

  invoke(producer: string, topic: string, partition: number, values: readonly string[], acks: Acks, node?: number): ProduceOp {
    this.producer(producer);
    if (values.length === 0) throw new Error('an operation needs at least one value');
    for (const value of values) {
      if (this.used.has(value)) throw new Error(`value ${value} is used twice; every produced value must be unique`);
      this.used.add(value);
    }
    const op: ProduceOp = { id: this.nextId++, producer, topic, partition, values: [...values], acks, node, invokedAt: this.now(), completedAt: undefined, outcome: undefined };
    this.ops.push(op);
    return op;
  }

  ok(op: ProduceOp, baseOffset: bigint): void {
    this.complete(op, { kind: 'ok', baseOffset });
  }

  fail(op: ProduceOp, error: string): void {
    this.complete(op, { kind: 'failed', error });
  }

  unknown(op: ProduceOp, error: string): void {
    this.complete(op, { kind: 'unknown', error });
  }

  private complete(op: ProduceOp, outcome: Outcome): void {
    if (op.outcome !== undefined) throw new Error(`operation ${op.id} completed twice`);
    op.outcome = outcome;
    op.completedAt = this.now();
  }

  observe(observation: Omit<Observation, 'at'>): Observation {
    const recorded = { ...observation, at: this.now() };
    this.observations.push(recorded);
    return recorded;
  }

  /** Opens an unavailable window now (for requests to `node` only, if given); call the returned function when it ends. */
  unavailable(topic: string, partition: number, reason: string, node?: number): () => void {
    const window: UnavailableWindow = { topic, partition, ...(node === undefined ? {} : { node }), from: this.now(), to: Number.POSITIVE_INFINITY, reason };
    this.windows.push(window);
    return () => {
      window.to = this.now();
    };
  }

  /** Counts per outcome, for a test's log line. */
  summary(): { ops: number; ok: number; failed: number; unknown: number; pending: number; records: number } {
    const count = { ops: this.ops.length, ok: 0, failed: 0, unknown: 0, pending: 0, records: 0 };
    for (const op of this.ops) {
      count.records += op.values.length;
      if (op.outcome === undefined) count.pending++;
      else count[op.outcome.kind]++;
    }
    return count;
  }
}

// ------------------------------------------------------------------ the checker

/** Acknowledged with acks=all: the record must survive. */
function isAcknowledged(op: ProduceOp): op is ProduceOp & { outcome: { kind: 'ok'; baseOffset: bigint }; completedAt: number } {
  return op.acks === -1 && op.outcome?.kind === 'ok';
}

export const partitionKey = (topic: string, partition: number) => `${topic}-${partition}`;

interface Sighting {
  value: string | null;
  sources: string[];
}

/** Checks every property above; returns the violations (empty when the history is sound). */
export function checkHistory(history: History): Violation[] {
  const violations: Violation[] = [];
  const opOfValue = new Map<string, { op: ProduceOp; index: number }>();
  const partitions = new Map<string, { topic: string; partition: number; ops: ProduceOp[]; observations: Observation[]; windows: UnavailableWindow[] }>();
  const partitionOf = (topic: string, partition: number) => {
    const key = partitionKey(topic, partition);
    let entry = partitions.get(key);
    if (entry === undefined) partitions.set(key, (entry = { topic, partition, ops: [], observations: [], windows: [] }));
    return entry;
  };
  for (const op of history.ops) {
    op.values.forEach((value, index) => opOfValue.set(value, { op, index }));
    partitionOf(op.topic, op.partition).ops.push(op);
  }
  for (const observation of history.observations) partitionOf(observation.topic, observation.partition).observations.push(observation);
  for (const window of history.windows) partitionOf(window.topic, window.partition).windows.push(window);
  for (const p of partitions.values()) {
    checkPartition(history, p.topic, p.partition, p.ops, p.observations, p.windows, opOfValue, violations);
  }
  checkConsumers(history, violations);
  return violations;
}

/**
 * At-least-once coverage: a consumer assigned a partition from offset `from` was handed every
 * acks=all acknowledged record at or above `from` and below the end of the partition's final
 * read, at its offset. And each consumer was handed a partition's offsets in increasing order.
 */
function checkConsumers(history: History, violations: Violation[]): void {
  for (const [name, spec] of history.consumers) {
    for (const partition of spec.partitions) {
      const report = (property: Property, detail: string, extra: { offset?: bigint; value?: string } = {}) => violations.push({ property, topic: spec.topic, partition, ...extra, detail });
      const consumption = history.consumptions.get(`${name}\u0000${partitionKey(spec.topic, partition)}`);
      const records = consumption?.records ?? [];
      for (let i = 1; i < records.length; i++) {
        if (records[i].offset > records[i - 1].offset) continue;
        report('consumer-order', `consumer ${name} was handed offset ${records[i].offset} after offset ${records[i - 1].offset}`, { offset: records[i].offset });
        break;
      }
      const finals = history.observations.filter((o) => o.final && o.topic === spec.topic && o.partition === partition);
      if (finals.length === 0) continue; // 'lost' already reports a partition never read back
      const end = finals.reduce((min, o) => (o.to < min ? o.to : min), finals[0].to);
      const seen = new Map(records.map((r) => [r.offset, r.value]));
      let missing = 0;
      let first: { offset: bigint; value: string; op: number } | undefined;
      for (const op of history.ops) {
        if (op.topic !== spec.topic || op.partition !== partition || !isAcknowledged(op)) continue;
        op.values.forEach((value, i) => {
          const offset = op.outcome.baseOffset + BigInt(i);
          if (offset < spec.from || offset >= end || seen.get(offset) === value) return;
          missing++;
          if (first === undefined || offset < first.offset) first = { offset, value, op: op.id };
        });
      }
      if (first !== undefined) {
        const reached = records.length === 0 ? 'nothing' : `up to offset ${records[records.length - 1].offset}`;
        report('not-consumed', `consumer ${name} was never handed ${missing} acknowledged record(s) below ${end}, first ${first.value} (op ${first.op}) at offset ${first.offset}; it was handed ${reached}`, { offset: first.offset, value: first.value });
      }
    }
  }
}

function checkPartition(
  history: History,
  topic: string,
  partition: number,
  ops: ProduceOp[],
  observations: Observation[],
  windows: UnavailableWindow[],
  opOfValue: ReadonlyMap<string, { op: ProduceOp; index: number }>,
  violations: Violation[],
): void {
  const report = (property: Property, detail: string, extra: { offset?: bigint; value?: string } = {}) => violations.push({ property, topic, partition, ...extra, detail });
  const acknowledged = ops.filter(isAcknowledged);

  // What each offset holds, by source; an acknowledgement is a source too.
  const atOffset = new Map<bigint, Sighting[]>();
  const sight = (offset: bigint, value: string | null, source: string) => {
    let sightings = atOffset.get(offset);
    if (sightings === undefined) atOffset.set(offset, (sightings = []));
    const same = sightings.find((s) => s.value === value);
    if (same === undefined) sightings.push({ value, sources: [source] });
    else if (!same.sources.includes(source)) same.sources.push(source);
  };
  for (const op of acknowledged) op.values.forEach((value, i) => sight(op.outcome.baseOffset + BigInt(i), value, `ack of op ${op.id} (${op.producer})`));
  const offsetsOfValue = new Map<string | null, Set<bigint>>();
  for (const observation of observations) {
    for (const record of observation.records) {
      sight(record.offset, record.value, observation.source);
      let offsets = offsetsOfValue.get(record.value);
      if (offsets === undefined) offsetsOfValue.set(record.value, (offsets = new Set()));
      offsets.add(record.offset);
    }
  }

  // (b) one offset, one record.
  for (const [offset, sightings] of [...atOffset].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (sightings.length < 2) continue;
    report('conflict', `offset ${offset} holds different records: ${sightings.map((s) => `${JSON.stringify(s.value)} per ${s.sources.join(', ')}`).join('; ')}`, { offset });
  }

  // (e) only produced values, in their own partition, never a definite failure; (d) no duplicates.
  for (const [value, offsets] of offsetsOfValue) {
    const offsetList = [...offsets].sort((a, b) => (a < b ? -1 : 1));
    const produced = value === null ? undefined : opOfValue.get(value);
    if (produced === undefined) {
      report('phantom', `${JSON.stringify(value)} was read at offset(s) ${offsetList.join(',')} but never produced`, { offset: offsetList[0], ...(value === null ? {} : { value }) });
      continue;
    }
    const { op } = produced;
    const v = value as string;
    if (op.topic !== topic || op.partition !== partition) {
      report('phantom', `${v} was produced to ${partitionKey(op.topic, op.partition)} (op ${op.id}) but read here at offset(s) ${offsetList.join(',')}`, { offset: offsetList[0], value: v });
    }
    if (op.outcome?.kind === 'failed') {
      report('failed-visible', `${v} was read at offset(s) ${offsetList.join(',')} but its produce (op ${op.id}, ${op.producer}) definitely failed: ${op.outcome.error}`, { offset: offsetList[0], value: v });
    }
    if (offsets.size > 1 && history.producers.get(op.producer)?.noDuplicates === true) {
      report('duplicate', `${v} (op ${op.id}, ${op.producer}) appears at ${offsets.size} offsets: ${offsetList.join(',')}`, { offset: offsetList[1], value: v });
    }
  }

  // (a) every acknowledged record is at its offset in every final read that covers it.
  const finals = observations.filter((o) => o.final);
  const finalRecords = finals.map((o) => new Map(o.records.map((r) => [r.offset, r.value])));
  for (const op of acknowledged) {
    op.values.forEach((value, i) => {
      const offset = op.outcome.baseOffset + BigInt(i);
      const what = `${value} (op ${op.id}, ${op.producer}, acknowledged at offset ${offset})`;
      if (finals.length === 0) {
        report('lost', `${what}: the partition was never read back`, { offset, value });
        return;
      }
      let covered = false;
      finals.forEach((final, f) => {
        if (offset < final.from || offset >= final.to) return;
        covered = true;
        const held = finalRecords[f].get(offset);
        if (held === value) return;
        const elsewhere = [...(offsetsOfValue.get(value) ?? [])];
        const where = elsewhere.length === 0 ? 'read nowhere' : `read at offset(s) ${elsewhere.join(',')}`;
        report('lost', `${what}: ${final.source} has ${held === undefined ? 'no record' : JSON.stringify(held)} there; ${where}`, { offset, value });
      });
      if (!covered) {
        const ranges = finals.map((f) => `${f.source} [${f.from}, ${f.to})`).join(', ');
        report('lost', `${what}: no final read covers the offset (${ranges})`, { offset, value });
      }
    });
  }

  // (c) real-time order: acknowledged before B was invoked => below B. Scanning by offset, the
  // latest invocation among lower offsets must precede each record's acknowledgement.
  const byOffset = [...acknowledged].sort((a, b) => (a.outcome.baseOffset < b.outcome.baseOffset ? -1 : a.outcome.baseOffset > b.outcome.baseOffset ? 1 : 0));
  let latestBelow: (typeof byOffset)[number] | undefined;
  for (const op of byOffset) {
    if (latestBelow !== undefined && latestBelow.invokedAt > op.completedAt && latestBelow.outcome.baseOffset < op.outcome.baseOffset) {
      report(
        'order',
        `op ${op.id} (${op.producer}, ${op.values[0]}) was acknowledged at offset ${op.outcome.baseOffset} (t=${op.completedAt}) before op ${latestBelow.id} (${latestBelow.producer}, ${latestBelow.values[0]}) was invoked (t=${latestBelow.invokedAt}), yet that one sits below it at offset ${latestBelow.outcome.baseOffset}`,
        { offset: op.outcome.baseOffset, value: op.values[0] },
      );
    }
    if (latestBelow === undefined || op.invokedAt > latestBelow.invokedAt) latestBelow = op;
  }
  // Per ordered producer: invocation order is offset order.
  const byProducer = new Map<string, typeof acknowledged>();
  for (const op of acknowledged) {
    if (history.producers.get(op.producer)?.ordered !== true) continue;
    let list = byProducer.get(op.producer);
    if (list === undefined) byProducer.set(op.producer, (list = []));
    list.push(op);
  }
  for (const [producer, list] of byProducer) {
    list.sort((a, b) => a.invokedAt - b.invokedAt);
    for (let i = 1; i < list.length; i++) {
      const [before, after] = [list[i - 1], list[i]];
      if (after.outcome.baseOffset > before.outcome.baseOffset) continue;
      report('order', `${producer} sent op ${before.id} (${before.values[0]}) before op ${after.id} (${after.values[0]}), but they were acknowledged at offsets ${before.outcome.baseOffset} and ${after.outcome.baseOffset}`, {
        offset: after.outcome.baseOffset,
        value: after.values[0],
      });
    }
  }

  // No acks=all success for a produce that lived entirely inside an unavailable window.
  for (const window of windows) {
    for (const op of acknowledged) {
      if (window.node !== undefined && op.node !== window.node) continue;
      if (op.invokedAt > window.from && op.completedAt < window.to) {
        const to = window.node === undefined ? '' : ` by node ${window.node}`;
        report('acked-while-unavailable', `op ${op.id} (${op.producer}, ${op.values[0]}) was invoked at t=${op.invokedAt} and acknowledged${to} at offset ${op.outcome.baseOffset} at t=${op.completedAt}, inside [${window.from}, ${window.to}] (${window.reason})`, {
          offset: op.outcome.baseOffset,
          value: op.values[0],
        });
      }
    }
  }
}

/** Violations as lines for a failure message (the first `limit` of them). */
export function formatViolations(violations: readonly Violation[], limit = 20): string {
  const lines = violations.slice(0, limit).map((v) => `  [${v.property}] ${partitionKey(v.topic, v.partition)}${v.offset === undefined ? '' : ` @${v.offset}`}: ${v.detail}`);
  if (violations.length > limit) lines.push(`  ... and ${violations.length - limit} more`);
  return lines.join('\n');
}

// ------------------------------------------------------------------ producing, recorded

/** Error codes that mean the produce wrote nothing (refused before the append). */
export const DEFINITE_FAILURES = new Set(['NOT_ENOUGH_REPLICAS', 'UNKNOWN_TOPIC_OR_PARTITION', 'INVALID_TOPIC_EXCEPTION', 'MESSAGE_TOO_LARGE', 'CORRUPT_MESSAGE', 'INVALID_RECORD', 'INVALID_REQUEST', 'INVALID_REQUIRED_ACKS', 'RECORD_LIST_TOO_LARGE', 'INVALID_TIMESTAMP']);

/**
 * Whether a partition's produce error is definite ('failed': nothing written) or 'unknown'.
 * NOT_LEADER_OR_FOLLOWER is definite when the node refused before appending; the replica manager
 * says "leadership moved while acks=all waited" when it appended first (then it is unknown).
 */
export function classifyProduceError(code: string, message: string): 'failed' | 'unknown' {
  if (DEFINITE_FAILURES.has(code)) return 'failed';
  if (code === 'NOT_LEADER_OR_FOLLOWER' && !/while acks=all waited/.test(message)) return 'failed';
  return 'unknown';
}

/** A unary call with its own deadline; a transport failure resolves as { ok: false }. */
export function unary<Res>(client: KavkaClient, method: string, request: object, deadlineMs: number): Promise<{ ok: true; value: Res } | { ok: false; code: grpc.status; details: string; reason: string | undefined }> {
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void>)[method].bind(client);
    fn(request, { deadline: Date.now() + deadlineMs }, (error, response) => {
      if (error) resolve({ ok: false, code: error.code, details: error.details, reason: readErrorInfo(error.metadata)?.reason });
      else resolve({ ok: true, value: response as Res });
    });
  });
}

/**
 * One send() of the TypeScript producer to one partition, recorded. The client retries inside
 * send(), so a failure is always 'unknown': an earlier attempt may have been written.
 */
export async function recordedSend(history: History, producerName: string, producer: Producer, topic: string, partition: number, values: string[], acks: Acks): Promise<ProduceOp> {
  const op = history.invoke(producerName, topic, partition, values, acks);
  try {
    const metadata = await producer.send({ topic, acks, messages: values.map((value) => ({ value, partition })) });
    const mine = metadata.find((m) => m.partition === partition);
    if (mine === undefined || acks === 0) history.unknown(op, `send() answered ${JSON.stringify(metadata)}`);
    else history.ok(op, BigInt(mine.baseOffset));
  } catch (error) {
    history.unknown(op, error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error));
  }
  return op;
}

// ------------------------------------------------------------------ reading back

/** The records of whole batches in [from, to); throws when the bytes are not whole valid batches. */
export function decodeRecords(batches: Buffer, from: bigint, to: bigint): ReadRecord[] {
  const records: ReadRecord[] = [];
  const scan = scanBatches(batches, { verifyCrc: true });
  if (scan.stop.kind !== 'end') throw new Error(`fetched bytes do not scan as whole batches: ${scan.stop.reason}`);
  for (const { position, size } of scan.batches) {
    for (const record of decodeRecordBatch(batches.subarray(position, position + size)).records) {
      if (record.offset < from || record.offset >= to) continue;
      records.push({ offset: record.offset, value: record.value === null ? null : record.value.toString('utf8') });
    }
  }
  return records;
}

/** One replica's log as the byte comparison sees it. */
export interface ReplicaSource {
  node: number;
  logStartOffset: bigint;
  /** The replica's own high watermark. */
  highWatermark: bigint;
  /** Whole batches of the log in [from, to), back to back. */
  read(from: bigint, to: bigint): Promise<Buffer>;
}

/**
 * Compares replica logs byte for byte over [max log start, min HW) and records each replica's
 * records below its own HW as a final observation. Returns replicas-differ violations (the first
 * differing batch named).
 */
export async function compareReplicas(history: History, topic: string, partition: number, sources: readonly ReplicaSource[]): Promise<Violation[]> {
  const violations: Violation[] = [];
  if (sources.length === 0) return violations;
  for (const source of sources) {
    if (source.highWatermark < source.logStartOffset) continue;
    const bytes = await source.read(source.logStartOffset, source.highWatermark);
    history.observe({ source: `node ${source.node} log (below its HW ${source.highWatermark})`, topic, partition, from: source.logStartOffset, to: source.highWatermark, records: decodeRecords(bytes, source.logStartOffset, source.highWatermark), final: true });
  }
  const from = sources.reduce((max, s) => (s.logStartOffset > max ? s.logStartOffset : max), sources[0].logStartOffset);
  const to = sources.reduce((min, s) => (s.highWatermark < min ? s.highWatermark : min), sources[0].highWatermark);
  if (to <= from) return violations;
  const reference = await sources[0].read(from, to);
  for (const source of sources.slice(1)) {
    const bytes = await source.read(from, to);
    if (bytes.equals(reference)) continue;
    violations.push({ property: 'replicas-differ', topic, partition, detail: `over [${from}, ${to}) node ${source.node} and node ${sources[0].node} differ: ${firstDifference(reference, bytes)}` });
  }
  return violations;
}

/** Where two runs of batches first differ, by batch. */
function firstDifference(a: Buffer, b: Buffer): string {
  const sa = scanBatches(a, { verifyCrc: false }).batches;
  const sb = scanBatches(b, { verifyCrc: false }).batches;
  for (let i = 0; i < Math.max(sa.length, sb.length); i++) {
    const x = sa[i];
    const y = sb[i];
    if (x === undefined || y === undefined) return `batch ${i}: one side has ${sa.length} batches, the other ${sb.length}`;
    if (a.subarray(x.position, x.position + x.size).equals(b.subarray(y.position, y.position + y.size))) continue;
    return `batch ${i}: offsets ${x.header.baseOffset}+${x.header.lastOffsetDelta} epoch ${x.header.partitionLeaderEpoch} vs offsets ${y.header.baseOffset}+${y.header.lastOffsetDelta} epoch ${y.header.partitionLeaderEpoch}`;
  }
  return `${a.length} vs ${b.length} bytes`;
}

// ------------------------------------------------------------------ saving and loading

interface HistoryJson {
  producers: Record<string, ProducerOptions>;
  consumers: Record<string, { topic: string; partitions: number[]; from: string }>;
  ops: (Omit<ProduceOp, 'outcome'> & { outcome: { kind: 'ok'; baseOffset: string } | { kind: 'failed' | 'unknown'; error: string } | null; invokedWallMs: number; completedWallMs: number | null })[];
  observations: (Omit<Observation, 'from' | 'to' | 'records'> & { from: string; to: string; records: [string, string | null][] })[];
  consumptions: { consumer: string; topic: string; partition: number; records: [string, string | null][] }[];
  windows: UnavailableWindow[];
  faults: FaultEvent[];
}

/** The whole history as JSON-safe data (offsets as decimal strings), for history.json. */
export function historyToJson(history: History): HistoryJson {
  const records = (list: readonly ReadRecord[]) => list.map((r): [string, string | null] => [r.offset.toString(), r.value]);
  return {
    producers: Object.fromEntries(history.producers),
    consumers: Object.fromEntries([...history.consumers].map(([name, c]) => [name, { topic: c.topic, partitions: [...c.partitions], from: c.from.toString() }])),
    ops: history.ops.map((op) => ({
      ...op,
      outcome: op.outcome === undefined ? null : op.outcome.kind === 'ok' ? { kind: 'ok', baseOffset: op.outcome.baseOffset.toString() } : op.outcome,
      invokedWallMs: history.wallTime(op.invokedAt),
      completedWallMs: op.completedAt === undefined ? null : history.wallTime(op.completedAt),
    })),
    observations: history.observations.filter((o) => !o.source.startsWith('consumer ')).map((o) => ({ ...o, from: o.from.toString(), to: o.to.toString(), records: records(o.records) })),
    consumptions: [...history.consumptions.values()].map((c) => ({ ...c, records: records(c.records) })),
    windows: history.windows.map((w) => ({ ...w, to: Number.isFinite(w.to) ? w.to : Number.MAX_SAFE_INTEGER })),
    faults: history.faults,
  };
}

/** Rebuilds a history saved by historyToJson, so `npm run chaos -- --check history.json` re-runs the checker. */
export function historyFromJson(json: HistoryJson): History {
  const history = new History();
  const records = (list: [string, string | null][]) => list.map(([offset, value]) => ({ offset: BigInt(offset), value }));
  for (const [name, options] of Object.entries(json.producers)) history.addProducer(name, options);
  for (const [name, c] of Object.entries(json.consumers)) history.addConsumer(name, { topic: c.topic, partitions: c.partitions, from: BigInt(c.from) });
  for (const op of json.ops) {
    const outcome: Outcome | undefined = op.outcome === null ? undefined : op.outcome.kind === 'ok' ? { kind: 'ok', baseOffset: BigInt(op.outcome.baseOffset) } : { kind: op.outcome.kind, error: op.outcome.error };
    history.ops.push({ id: op.id, producer: op.producer, topic: op.topic, partition: op.partition, values: op.values, acks: op.acks, node: op.node, invokedAt: op.invokedAt, completedAt: op.completedAt ?? undefined, outcome });
  }
  for (const o of json.observations) history.observations.push({ ...o, from: BigInt(o.from), to: BigInt(o.to), records: records(o.records) });
  for (const c of json.consumptions) history.consumed(c.consumer, c.topic, c.partition, records(c.records));
  history.windows.push(...json.windows);
  history.faults.push(...json.faults);
  return history;
}
