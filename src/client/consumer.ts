// The kafkajs-shaped consumer, without groups (consumer groups are a later issue): subscribe()
// or assign() decide the partitions, each partition keeps its own position, and run() long-polls
// Fetch against each partition's leader.
//
// Structure: a supervisor loop resolves start positions (ListOffsets) and keeps one fetch loop
// per leader broker running; each fetch loop asks its broker for the partitions it currently
// leads, then hands the response to `deliver`, which runs user handlers one partition at a time
// (a single delivery chain across brokers, so handlers never run concurrently).
//
// Positions: `position` is the next offset to hand to the user. seek() bumps the partition's
// generation, so a fetch answered for the old position is dropped. Position changes only in
// deliver (moves forward), in seek (anywhere) and on OFFSET_OUT_OF_RANGE (reset per
// autoOffsetReset).
import { KavkaError, isRetriable, toKavkaError } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import type { FetchResponse__Output } from '../gen/kavka/v1/FetchResponse.js';
import type { Cluster } from './cluster.js';
import { errorNameOf } from './cluster.js';
import { toOffset, toTimestamp } from './convert.js';
import { decodeFetchedBatches } from './fetch-decode.js';
import { listOffsets, type OffsetQuery } from './offsets.js';
import { backoffMs } from './retry.js';
import type { ConnectionPool, KavkaRpc } from './rpc.js';
import type {
  AssignOptions,
  AutoOffsetReset,
  Batch,
  ClientLogger,
  ConsumerConfig,
  ConsumerRunConfig,
  KafkaMessage,
  RetryOptions,
  SeekOptions,
  SubscribeOptions,
  TopicPartitions,
} from './types.js';

export interface ConsumerDependencies {
  cluster: Cluster;
  rpc: KavkaRpc;
  pool: ConnectionPool;
  clock: Clock;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  retry: RetryOptions;
  logger: ClientLogger | undefined;
}

type StartPolicy = { kind: 'earliest' } | { kind: 'latest' } | { kind: 'timestamp'; timestamp: bigint };

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  /** Next offset to hand to the user; undefined until resolved from `start`. */
  position: bigint | undefined;
  start: StartPolicy;
  paused: boolean;
  /** -1 until the first fetch answers. */
  highWatermark: bigint;
  /** onPartitionEnd was called for the current position. */
  atEnd: boolean;
  /** Bumped by seek() and resets; a fetch issued under an older generation is dropped. */
  generation: number;
}

interface Subscription {
  pattern: string | RegExp;
  start: StartPolicy;
}

interface ResolvedConsumerConfig {
  maxBytes: number;
  maxBytesPerPartition: number;
  minBytes: number;
  maxWaitTimeMs: number;
  autoOffsetReset: AutoOffsetReset;
  metadataMaxAgeMs: number;
}

function resolveConfig(config: ConsumerConfig): ResolvedConsumerConfig {
  if (config.groupId !== undefined) {
    throw new KavkaError('UNSUPPORTED_VERSION', `consumer groups are not available yet (groupId "${config.groupId}"); use subscribe() or assign() without a groupId`, { retriable: false });
  }
  const resolved: ResolvedConsumerConfig = {
    maxBytes: config.maxBytes ?? 10 * 1024 * 1024,
    maxBytesPerPartition: config.maxBytesPerPartition ?? 1024 * 1024,
    minBytes: config.minBytes ?? 1,
    maxWaitTimeMs: config.maxWaitTimeMs ?? 500,
    autoOffsetReset: config.autoOffsetReset ?? 'latest',
    metadataMaxAgeMs: 300_000,
  };
  for (const name of ['maxBytes', 'maxBytesPerPartition', 'minBytes', 'maxWaitTimeMs'] as const) {
    const value = resolved[name];
    if (!Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) throw new KavkaError('INVALID_REQUEST', `consumer ${name} must be an integer in [0, 2^31), got ${value}`, { retriable: false });
  }
  if (!['earliest', 'latest', 'none'].includes(resolved.autoOffsetReset)) {
    throw new KavkaError('INVALID_CONFIG', `autoOffsetReset must be earliest, latest or none, got ${String(resolved.autoOffsetReset)}`, { retriable: false });
  }
  return resolved;
}

function startPolicyOf(options: { fromBeginning?: boolean; fromTimestamp?: number | string }): StartPolicy {
  if (options.fromTimestamp !== undefined) return { kind: 'timestamp', timestamp: toTimestamp(options.fromTimestamp, 0) };
  return options.fromBeginning === true ? { kind: 'earliest' } : { kind: 'latest' };
}

/**
 * A consumer retries retriable failures for as long as they last, so its backoff stays short
 * (Kafka's reconnect.backoff.max.ms): a restarted broker is noticed within a second.
 */
const CONSUMER_BACKOFF_MAX_MS = 1_000;

function keyOf(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** A promise that a wake() call (or a timeout) resolves; re-armed after each wait. */
class WakeSignal {
  private pending: (() => void) | undefined;
  private woken = false;

  constructor(private readonly clock: Clock) {}

  wake(): void {
    this.woken = true;
    this.pending?.();
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const cancel = this.clock.schedule(timeoutMs, () => this.pending?.());
      this.pending = () => {
        cancel();
        this.pending = undefined;
        this.woken = false;
        resolve();
      };
    });
  }
}

export class Consumer {
  private readonly config: ResolvedConsumerConfig;
  private readonly partitions = new Map<string, PartitionState>();
  private readonly subscriptions: Subscription[] = [];
  /** Explicit assignment (assign()); null when subscribe() is used. */
  private assignment: AssignOptions[] | null = null;
  /** Seeks made before the partition was assigned. */
  private readonly pendingSeeks = new Map<string, bigint>();
  private readonly fetchLoops = new Map<number, Promise<void>>();
  private readonly wakeSignal: WakeSignal;
  private runConfig: ConsumerRunConfig | undefined;
  private running = false;
  private inHandler = false;
  private assignmentDirty = true;
  private crashError: KavkaError | undefined;
  private supervisor: Promise<void> | undefined;
  private deliveryChain: Promise<void> = Promise.resolve();
  private refreshing: Promise<void> | undefined;
  private connected = false;

  constructor(
    config: ConsumerConfig,
    private readonly deps: ConsumerDependencies,
  ) {
    this.config = resolveConfig(config);
    this.wakeSignal = new WakeSignal(deps.clock);
  }

  async connect(): Promise<void> {
    await this.deps.cluster.connect();
    this.connected = true;
  }

  async subscribe(options: SubscribeOptions): Promise<void> {
    if (this.assignment !== null) throw new KavkaError('INVALID_REQUEST', 'subscribe() cannot be mixed with assign()', { retriable: false });
    const topics = options.topics ?? (options.topic === undefined ? [] : [options.topic]);
    if (topics.length === 0) throw new KavkaError('INVALID_TOPIC_EXCEPTION', 'subscribe() needs topics', { retriable: false });
    const start = startPolicyOf(options);
    for (const pattern of topics) this.subscriptions.push({ pattern, start });
    this.assignmentDirty = true;
    this.wakeSignal.wake();
  }

  /** Replaces the assignment (Java's assign()); partitions kept keep their positions. */
  assign(assignments: AssignOptions[]): void {
    if (this.subscriptions.length > 0) throw new KavkaError('INVALID_REQUEST', 'assign() cannot be mixed with subscribe()', { retriable: false });
    for (const a of assignments) {
      if (typeof a.topic !== 'string' || a.topic.length === 0) throw new KavkaError('INVALID_TOPIC_EXCEPTION', 'assign() needs a topic for every entry', { retriable: false });
      for (const p of a.partitions ?? []) {
        if (!Number.isInteger(p) || p < 0) throw new KavkaError('UNKNOWN_TOPIC_OR_PARTITION', `partition ${p} of ${a.topic} is not a partition number`, { retriable: false });
      }
    }
    this.assignment = assignments.map((a) => ({ ...a }));
    this.assignmentDirty = true;
    this.wakeSignal.wake();
  }

  seek({ topic, partition, offset }: SeekOptions): void {
    const position = toOffset(offset);
    const state = this.partitions.get(keyOf(topic, partition));
    if (state === undefined) {
      this.pendingSeeks.set(keyOf(topic, partition), position);
      return;
    }
    state.position = position;
    state.generation++;
    state.atEnd = false;
    this.wakeSignal.wake();
  }

  pause(topics: TopicPartitions[]): void {
    this.setPaused(topics, true);
  }

  resume(topics: TopicPartitions[]): void {
    this.setPaused(topics, false);
    this.wakeSignal.wake();
  }

  paused(): { topic: string; partitions: number[] }[] {
    const byTopic = new Map<string, number[]>();
    for (const s of this.partitions.values()) {
      if (!s.paused) continue;
      const list = byTopic.get(s.topic) ?? [];
      list.push(s.partition);
      byTopic.set(s.topic, list);
    }
    return [...byTopic].map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a - b) }));
  }

  /** The partitions currently assigned, with their positions (undefined = not yet resolved). */
  assignments(): { topic: string; partition: number; position: string | undefined; highWatermark: string }[] {
    return [...this.partitions.values()].map((s) => ({ topic: s.topic, partition: s.partition, position: s.position?.toString(), highWatermark: s.highWatermark.toString() }));
  }

  private setPaused(topics: TopicPartitions[], paused: boolean): void {
    for (const { topic, partitions } of topics) {
      for (const s of this.partitions.values()) {
        if (s.topic === topic && (partitions === undefined || partitions.includes(s.partition))) s.paused = paused;
      }
    }
  }

  /** Starts consuming; resolves once started (as kafkajs). finished() tells when it ends. */
  async run(config: ConsumerRunConfig): Promise<void> {
    if (this.running) throw new KavkaError('INVALID_REQUEST', 'the consumer is already running', { retriable: false });
    if (config.eachMessage === undefined && config.eachBatch === undefined) throw new KavkaError('INVALID_REQUEST', 'run() needs eachMessage or eachBatch', { retriable: false });
    if (!this.connected) await this.connect();
    this.runConfig = config;
    this.running = true;
    this.crashError = undefined;
    this.supervisor = this.supervise().catch((error: unknown) => this.crash(toKavkaError(error)));
  }

  /** Resolves when run() has stopped; rejects with the error that crashed it. */
  async finished(): Promise<void> {
    await this.supervisor;
    if (this.crashError !== undefined) throw this.crashError;
  }

  /**
   * Stops fetching. From outside a handler it waits for the handler in progress and the fetch
   * loops; from inside a handler it only signals (waiting there would wait on itself).
   */
  async stop(): Promise<void> {
    this.running = false;
    this.wakeSignal.wake();
    if (this.inHandler) return;
    await this.supervisor;
  }

  async disconnect(): Promise<void> {
    await this.stop();
    this.deps.pool.close();
    this.connected = false;
  }

  private crash(error: KavkaError): void {
    if (this.crashError === undefined) this.crashError = error;
    this.deps.logger?.error({ code: error.code, error: error.message }, 'consumer crashed');
    this.running = false;
    this.wakeSignal.wake();
  }

  // ---------------------------------------------------------------- supervisor

  private async supervise(): Promise<void> {
    let failures = 0;
    try {
      while (this.running) {
        let waitMs = this.config.metadataMaxAgeMs;
        try {
          if (this.assignmentDirty) await this.updateAssignment();
          await this.resolvePositions();
          const leaderless = this.startFetchLoops();
          failures = 0;
          if (leaderless) waitMs = Math.min(CONSUMER_BACKOFF_MAX_MS, backoffMs(0, this.deps.retry, this.deps.random));
        } catch (error) {
          const failure = toKavkaError(error);
          if (!isRetriable(failure)) throw failure;
          waitMs = Math.min(CONSUMER_BACKOFF_MAX_MS, backoffMs(failures++, this.deps.retry, this.deps.random));
          this.deps.logger?.debug({ code: failure.code, error: failure.message, delayMs: waitMs }, 'consumer setup failed; retrying');
          await this.deps.sleep(waitMs);
          await this.refreshMetadata();
          continue;
        }
        const started = this.deps.clock.monotonicMs();
        await this.wakeSignal.wait(waitMs);
        if (this.running && this.deps.clock.monotonicMs() - started >= waitMs) {
          await this.refreshMetadata();
          if (this.subscriptions.length > 0 || this.assignment?.some((a) => a.partitions === undefined)) this.assignmentDirty = true;
        }
      }
    } finally {
      this.running = false;
      await Promise.allSettled([...this.fetchLoops.values()]);
      await this.deliveryChain;
    }
  }

  /** Expands subscriptions (or assign() entries without partitions) into partitions. */
  private async updateAssignment(): Promise<void> {
    const wanted = new Map<string, StartPolicy>();
    if (this.assignment !== null) {
      for (const a of this.assignment) {
        const start = startPolicyOf(a);
        const partitions = a.partitions ?? (await this.deps.cluster.topic(a.topic)).partitions.map((p) => p.partition);
        for (const p of partitions) wanted.set(keyOf(a.topic, p), start);
      }
    } else {
      const patterns = this.subscriptions.filter((s) => s.pattern instanceof RegExp);
      const names = new Map<string, StartPolicy>();
      for (const s of this.subscriptions) if (typeof s.pattern === 'string') names.set(s.pattern, s.start);
      if (patterns.length > 0) {
        const all = await this.deps.cluster.fetchMetadata([], true);
        for (const t of all.topics) {
          const match = patterns.find((s) => (s.pattern as RegExp).test(t.name));
          if (match !== undefined && !names.has(t.name)) names.set(t.name, match.start);
        }
      }
      for (const [name, start] of names) {
        const topic = await this.deps.cluster.topic(name);
        for (const p of topic.partitions) wanted.set(keyOf(name, p.partition), start);
      }
    }
    const firstAssignment = this.partitions.size === 0;
    for (const key of [...this.partitions.keys()]) if (!wanted.has(key)) this.partitions.delete(key);
    for (const [key, start] of wanted) {
      if (this.partitions.has(key)) continue;
      const [topic, partition] = key.split('\u0000');
      const seek = this.pendingSeeks.get(key);
      this.pendingSeeks.delete(key);
      // A partition that appears after the first assignment is new: start it at its beginning,
      // so records written before we noticed it are not skipped.
      const policy: StartPolicy = firstAssignment || this.assignment !== null ? start : { kind: 'earliest' };
      this.partitions.set(key, { topic, partition: Number(partition), position: seek, start: policy, paused: false, highWatermark: -1n, atEnd: false, generation: 0 });
    }
    this.assignmentDirty = false;
  }

  /** Looks up start offsets for partitions without a position. */
  private async resolvePositions(): Promise<void> {
    const unresolved = [...this.partitions.values()].filter((s) => s.position === undefined);
    if (unresolved.length === 0) return;
    const queries: OffsetQuery[] = unresolved.map((s) => ({
      topic: s.topic,
      partition: s.partition,
      timestamp: s.start.kind === 'earliest' ? -2n : s.start.kind === 'latest' ? -1n : s.start.timestamp,
    }));
    const results = await listOffsets(this.deps.cluster, this.deps.rpc, queries);
    // A timestamp after the last record has no offset (-1): start at the end instead.
    const past = queries.filter((q) => q.timestamp >= 0n && (results.get(keyOf(q.topic, q.partition))?.offset ?? -1n) < 0n);
    const ends = past.length > 0 ? await listOffsets(this.deps.cluster, this.deps.rpc, past.map((q) => ({ ...q, timestamp: -1n }))) : new Map();
    for (const s of unresolved) {
      const key = keyOf(s.topic, s.partition);
      const found = results.get(key);
      const offset = found !== undefined && found.offset >= 0n ? found.offset : ends.get(key)?.offset;
      if (offset === undefined || offset < 0n) throw new KavkaError('OFFSET_NOT_AVAILABLE', `no start offset for ${s.topic}-${s.partition}`);
      if (this.partitions.get(key) === s && s.position === undefined) s.position = offset;
    }
  }

  /** Starts a fetch loop for each leader with fetchable partitions; true if some had no leader. */
  private startFetchLoops(): boolean {
    let leaderless = false;
    for (const s of this.partitions.values()) {
      if (s.paused || s.position === undefined) continue;
      let nodeId: number;
      try {
        nodeId = this.deps.cluster.leaderFor(s.topic, s.partition).nodeId;
      } catch {
        leaderless = true;
        continue;
      }
      if (!this.fetchLoops.has(nodeId)) {
        const loop = this.fetchLoop(nodeId)
          .catch((error: unknown) => this.crash(toKavkaError(error)))
          .finally(() => {
            this.fetchLoops.delete(nodeId);
            this.wakeSignal.wake();
          });
        this.fetchLoops.set(nodeId, loop);
      }
    }
    return leaderless;
  }

  // ---------------------------------------------------------------- fetching

  private fetchablePartitionsOf(nodeId: number): PartitionState[] {
    const out: PartitionState[] = [];
    for (const s of this.partitions.values()) {
      if (s.paused || s.position === undefined) continue;
      try {
        if (this.deps.cluster.leaderFor(s.topic, s.partition).nodeId === nodeId) out.push(s);
      } catch {
        // Leaderless: the supervisor retries after a metadata refresh.
      }
    }
    return out;
  }

  private async fetchLoop(nodeId: number): Promise<void> {
    let failures = 0;
    while (this.running) {
      const states = this.fetchablePartitionsOf(nodeId);
      const address = this.deps.cluster.brokerAddress(nodeId);
      if (states.length === 0 || address === undefined) return;
      const generations = new Map(states.map((s) => [keyOf(s.topic, s.partition), s.generation]));
      const topics = new Map<string, { partition: number; fetchOffset: string; partitionMaxBytes: number }[]>();
      for (const s of states) {
        const list = topics.get(s.topic) ?? [];
        list.push({ partition: s.partition, fetchOffset: (s.position as bigint).toString(), partitionMaxBytes: this.config.maxBytesPerPartition });
        topics.set(s.topic, list);
      }
      let response: FetchResponse__Output;
      try {
        response = await this.deps.rpc.fetch(address, {
          maxWaitMs: this.config.maxWaitTimeMs,
          minBytes: this.config.minBytes,
          maxBytes: this.config.maxBytes,
          topics: [...topics].map(([name, partitions]) => ({ name, partitions })),
        });
        failures = 0;
      } catch (error) {
        // Like Kafka's consumer, a retriable failure (a broker down or restarting, a moved
        // leader) is retried for as long as it lasts, backing off up to maxRetryTimeMs.
        const failure = toKavkaError(error);
        if (!isRetriable(failure)) throw failure;
        const delay = Math.min(CONSUMER_BACKOFF_MAX_MS, backoffMs(failures++, this.deps.retry, this.deps.random));
        const level = failures === this.deps.retry.retries + 1 ? 'warn' : 'debug';
        this.deps.logger?.[level]({ address, code: failure.code, error: failure.message, delayMs: delay, failures }, 'fetch failed; retrying');
        await this.deps.sleep(delay);
        await this.refreshMetadata();
        this.wakeSignal.wake();
        continue;
      }
      if (!this.running) return;
      const needsRefresh = await this.enqueueDelivery(() => this.deliver(nodeId, response, generations));
      if (needsRefresh) {
        await this.deps.sleep(Math.min(CONSUMER_BACKOFF_MAX_MS, backoffMs(0, this.deps.retry, this.deps.random)));
        await this.refreshMetadata();
        this.wakeSignal.wake();
      }
    }
  }

  private enqueueDelivery<T>(task: () => Promise<T>): Promise<T> {
    const result = this.deliveryChain.then(task);
    this.deliveryChain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Hands one fetch response to the user. Returns true when metadata should be refreshed. */
  private async deliver(nodeId: number, response: FetchResponse__Output, generations: Map<string, number>): Promise<boolean> {
    let needsRefresh = false;
    for (const topic of response.topics) {
      for (const p of topic.partitions) {
        const key = keyOf(topic.name, p.partition);
        const state = this.partitions.get(key);
        if (!this.running) return needsRefresh;
        if (state === undefined || state.generation !== generations.get(key) || state.position === undefined) continue;
        const code = errorNameOf(p.errorCode);
        if (code !== 'NONE') {
          needsRefresh = this.onPartitionError(state, code, p.errorMessage) || needsRefresh;
          continue;
        }
        state.highWatermark = BigInt(p.highWatermark);
        const decoded = decodeFetchedBatches(p.batches, state.position, `${state.topic}-${state.partition}`);
        const completed = await this.handOver(nodeId, state, decoded.messages, generations.get(key) as number);
        if (!completed) continue;
        const nextFetch = BigInt(p.nextFetchOffset || '0');
        let next = decoded.endOffset > state.position ? decoded.endOffset : state.position;
        if (decoded.messages.length === 0 && nextFetch > next && nextFetch <= state.highWatermark) next = nextFetch;
        state.position = next;
        await this.maybeReportEnd(state);
      }
    }
    return needsRefresh;
  }

  /**
   * Runs the user's handler over `messages`. Returns true when every message was handled and the
   * partition is still current (not sought, paused or stopped), so the caller may move past the
   * whole response.
   */
  private async handOver(nodeId: number, state: PartitionState, messages: KafkaMessage[], generation: number): Promise<boolean> {
    const run = this.runConfig as ConsumerRunConfig;
    const current = (): boolean => this.running && state.generation === generation && !state.paused && this.partitions.get(keyOf(state.topic, state.partition)) === state;
    const pause = (): (() => void) => {
      state.paused = true;
      return () => this.resume([{ topic: state.topic, partitions: [state.partition] }]);
    };
    if (messages.length > 0) state.atEnd = false;
    if (run.eachBatch !== undefined) {
      if (messages.length === 0) return current();
      let resolved: bigint | undefined;
      const batch = this.batchOf(state, messages);
      await this.callHandler(() =>
        (run.eachBatch as NonNullable<ConsumerRunConfig['eachBatch']>)({
          batch,
          brokerId: nodeId,
          resolveOffset: (offset: string) => {
            resolved = BigInt(offset);
          },
          heartbeat: () => Promise.resolve(),
          isRunning: () => this.running,
          isStale: () => state.generation !== generation,
          pause,
        }),
      );
      if (state.generation !== generation) return false;
      if (run.eachBatchAutoResolve ?? true) return current();
      if (resolved !== undefined && resolved + 1n > (state.position as bigint)) state.position = resolved + 1n;
      return false;
    }
    const eachMessage = run.eachMessage as NonNullable<ConsumerRunConfig['eachMessage']>;
    for (const message of messages) {
      if (!current()) return false;
      await this.callHandler(() => eachMessage({ topic: state.topic, partition: state.partition, message, brokerId: nodeId, heartbeat: () => Promise.resolve(), pause }));
      if (state.generation !== generation) return false;
      state.position = BigInt(message.offset) + 1n;
    }
    return current();
  }

  private async callHandler(handler: () => Promise<void> | void): Promise<void> {
    this.inHandler = true;
    try {
      await handler();
    } finally {
      this.inHandler = false;
    }
  }

  private batchOf(state: PartitionState, messages: KafkaMessage[]): Batch {
    const highWatermark = state.highWatermark.toString();
    const last = messages[messages.length - 1];
    return {
      topic: state.topic,
      partition: state.partition,
      highWatermark,
      messages,
      isEmpty: () => messages.length === 0,
      firstOffset: () => messages[0]?.offset ?? null,
      lastOffset: () => last.offset,
      offsetLag: () => {
        const lag = state.highWatermark - 1n - BigInt(last.offset);
        return (lag < 0n ? 0n : lag).toString();
      },
    };
  }

  private async maybeReportEnd(state: PartitionState): Promise<void> {
    const onEnd = this.runConfig?.onPartitionEnd;
    if (state.atEnd || state.position === undefined || state.highWatermark < 0n || state.position < state.highWatermark) return;
    state.atEnd = true;
    if (onEnd !== undefined) {
      const info = { topic: state.topic, partition: state.partition, offset: state.position.toString(), highWatermark: state.highWatermark.toString() };
      await this.callHandler(() => onEnd(info));
    }
  }

  /** Returns true when the error calls for a metadata refresh. */
  private onPartitionError(state: PartitionState, code: ReturnType<typeof errorNameOf>, message: string): boolean {
    const where = `${state.topic}-${state.partition} at offset ${state.position}`;
    if (code === 'OFFSET_OUT_OF_RANGE') {
      if (this.config.autoOffsetReset === 'none') {
        this.crash(new KavkaError('OFFSET_OUT_OF_RANGE', `${where} is out of range and autoOffsetReset is none`, { retriable: false }));
        return false;
      }
      this.deps.logger?.info({ topic: state.topic, partition: state.partition, position: String(state.position), reset: this.config.autoOffsetReset }, 'offset out of range; resetting');
      state.position = undefined;
      state.start = { kind: this.config.autoOffsetReset };
      state.generation++;
      this.wakeSignal.wake();
      return false;
    }
    const error = new KavkaError(code, `${where}: ${message || code}`);
    if (isRetriable(error)) return true;
    this.crash(error);
    return false;
  }

  private refreshMetadata(): Promise<void> {
    const topics = [...new Set([...this.partitions.values()].map((s) => s.topic))];
    this.refreshing ??= this.deps.cluster
      .refresh(topics)
      .catch((error: unknown) => this.deps.logger?.debug({ error: String(error) }, 'metadata refresh failed'))
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }
}
