// The chaos workload: producers and consumers on the Kavka client, each operation recorded in a
// History with its outcome. Bounded by a record count per producer and by time.
//
// Producers pick a partition and send 1-3 fresh values at a time, keeping up to `inFlight`
// sends outstanding:
//   idempotent  acks=all with idempotence (the default producer): no loss, no duplicates,
//               per-partition order of its acknowledged sends
//   acks1       acks=1 without idempotence: may lose what it was told (a leader that dies before
//               its followers fetch) and may duplicate on retry; only "nothing unproduced" and
//               "one record per offset" hold for it
// Consumers are each assigned partitions from offset 0 and record every batch they are handed.
import { Kavka } from '../client/index.js';
import type { Consumer, Producer } from '../client/index.js';
import type { Prng } from '../util/prng.js';
import { recordedSend, type History } from './history.js';

export type ProducerKind = 'idempotent' | 'acks1';

export interface WorkloadOptions {
  bootstrap: string[];
  topic: string;
  partitions: number;
  producers: { name: string; kind: ProducerKind }[];
  /** Consumers; partitions are dealt to them round-robin. */
  consumers: number;
  /** Records each producer sends at most. */
  recordsPerProducer: number;
  /** Sends outstanding per producer. */
  inFlight: number;
  /** Pause between sends, ms (uniform in [0, pauseMs)). */
  pauseMs: number;
  random: Prng;
  history: History;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Workload {
  private stopping = false;
  private readonly loops: Promise<void>[] = [];
  private readonly clients: Kavka[] = [];
  private readonly producers: Producer[] = [];
  private readonly consumers: { name: string; consumer: Consumer; partitions: number[]; next: Map<number, bigint> }[] = [];

  constructor(private readonly options: WorkloadOptions) {}

  private client(name: string): Kavka {
    // Generous retries: a send only fails for good after faults outlast them, and then it is
    // recorded as unknown (an earlier attempt may have been written).
    const client = new Kavka({ clientId: name, brokers: this.options.bootstrap, retry: { retries: 60, initialRetryTimeMs: 100, maxRetryTimeMs: 1_000 }, requestTimeoutMs: 5_000 });
    this.clients.push(client);
    return client;
  }

  async start(): Promise<void> {
    const { history, topic } = this.options;
    for (const { name, kind } of this.options.producers) {
      history.addProducer(name, kind === 'idempotent' ? { noDuplicates: true, ordered: true } : { noDuplicates: false, ordered: false });
      const producer = this.client(name).producer(kind === 'idempotent' ? { acks: -1, lingerMs: 2, timeoutMs: 5_000 } : { acks: 1, idempotent: false, lingerMs: 2, timeoutMs: 5_000 });
      await producer.connect();
      this.producers.push(producer);
      this.loops.push(this.produceLoop(name, producer, kind === 'idempotent' ? -1 : 1, this.options.random.fork()));
    }
    for (let c = 0; c < this.options.consumers; c++) {
      const name = `c${c + 1}`;
      const partitions = Array.from({ length: this.options.partitions }, (_, p) => p).filter((p) => p % this.options.consumers === c);
      if (partitions.length === 0) continue;
      history.addConsumer(name, { topic, partitions, from: 0n });
      const consumer = this.client(name).consumer({ maxWaitTimeMs: 200, autoOffsetReset: 'earliest' });
      consumer.assign([{ topic, partitions, fromBeginning: true }]);
      const next = new Map<number, bigint>();
      await consumer.run({
        eachBatch: ({ batch }) => {
          const records = batch.messages.map((m) => ({ offset: BigInt(m.offset), value: m.value === null ? null : m.value.toString('utf8') }));
          history.consumed(name, batch.topic, batch.partition, records);
          if (records.length > 0) next.set(batch.partition, records[records.length - 1].offset + 1n);
        },
      });
      this.consumers.push({ name, consumer, partitions, next });
    }
  }

  private async produceLoop(name: string, producer: Producer, acks: -1 | 1, random: Prng): Promise<void> {
    const { history, topic } = this.options;
    const inflight = new Set<Promise<unknown>>();
    let sent = 0;
    while (!this.stopping && sent < this.options.recordsPerProducer) {
      const values = Array.from({ length: Math.min(1 + random.int(3), this.options.recordsPerProducer - sent) }, () => history.freshValue(name));
      sent += values.length;
      const op = recordedSend(history, name, producer, topic, random.int(this.options.partitions), values, acks);
      inflight.add(op);
      void op.finally(() => inflight.delete(op));
      if (inflight.size >= this.options.inFlight) await Promise.race(inflight);
      await sleep(random.int(this.options.pauseMs));
    }
    await Promise.all(inflight);
  }

  /** Producers stop sending and wait for what they have outstanding (at most `timeoutMs`). */
  async stopProducers(timeoutMs: number): Promise<void> {
    this.stopping = true;
    await Promise.race([Promise.all(this.loops), sleep(timeoutMs)]);
  }

  /** Every producer has sent its records (or was stopped) and has no send outstanding. */
  producersDone(): Promise<void> {
    return Promise.all(this.loops).then(() => undefined);
  }

  /**
   * Waits until every consumer has been handed each of its partitions up to `ends` (exclusive),
   * at most `timeoutMs`; returns the partitions some consumer did not reach.
   */
  async drainConsumers(ends: ReadonlyMap<number, bigint>, timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    const behind = () =>
      this.consumers.flatMap(({ name, partitions, next }) => partitions.filter((p) => (next.get(p) ?? 0n) < (ends.get(p) ?? 0n)).map((p) => `${name} on partition ${p} at ${next.get(p) ?? 0n} of ${ends.get(p) ?? 0n}`));
    while (behind().length > 0 && Date.now() < deadline) await sleep(100);
    return behind();
  }

  /** Disconnects every client; in-flight sends end as unknown. */
  async close(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.consumers.map(({ consumer }) => consumer.disconnect().catch(() => undefined)));
    await Promise.all(this.producers.map((producer) => Promise.race([producer.disconnect().catch(() => undefined), sleep(5_000)])));
  }
}
