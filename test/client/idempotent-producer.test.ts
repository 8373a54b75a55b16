// The idempotent producer against scripted brokers whose partition logs check producer ids,
// epochs and sequences as a leader does (FakePartitionLog): what the client stamps into each
// batch, how retries keep each partition's order and bytes, and how sequence errors are handled.
import { afterEach, describe, expect, it } from 'vitest';
import type * as grpc from '@grpc/grpc-js';
import { Kavka } from '../../src/client/index.js';
import { incrementSequence, MAX_SEQUENCE } from '../../src/client/idempotence.js';
import type { BatchHeader } from '../../src/codec/record-batch.js';
import type { ErrorName } from '../../src/util/errors.js';
import type { ProduceRequest__Output } from '../../src/gen/kavka/v1/ProduceRequest.js';
import type { ProduceResponse } from '../../src/gen/kavka/v1/ProduceResponse.js';
import { batchHeaders, FakePartitionLog, metadataAnswer, startFakeBroker, type FakeBroker } from './fake-broker.js';

const TOPIC = 't';
const fast = { retries: 5, initialRetryTimeMs: 10, maxRetryTimeMs: 50 };
const running: FakeBroker[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((b) => b.stop()));
});

/** Polls until `condition` holds; fails after ~5 s instead of hanging. */
async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** One PartitionProduceData as the broker received it. */
interface Arrival {
  index: number;
  partition: number;
  bytes: Buffer;
  headers: BatchHeader[];
}

/**
 * What the broker does with one arrival: append it, or answer an error, having written it first
 * (`write`: the answer is lost, as with a timeout after the append) or not. `keepOffsets` answers
 * the error with the offsets of the write.
 */
type Verdict = 'append' | { error: ErrorName; write?: boolean; keepOffsets?: boolean };

interface Answer {
  index: number;
  partition: number;
  errorCode: ErrorName;
  duplicate: boolean;
}

interface SequencedBroker {
  broker: FakeBroker;
  logs: FakePartitionLog[];
  arrivals: Arrival[];
  answers: Answer[];
}

/**
 * A broker leading every partition of TOPIC, with a FakePartitionLog each. ProduceStream requests
 * are handled one at a time in arrival order (a real broker answers a partition's requests in
 * order); `script` may hold an answer (returning a promise) or turn it into an error.
 */
async function startSequencedBroker(partitions: number, script: (arrival: Arrival) => Verdict | Promise<Verdict> = () => 'append', options: { leaderPort?: () => number | undefined } = {}): Promise<SequencedBroker> {
  const logs = Array.from({ length: partitions }, () => new FakePartitionLog());
  const arrivals: Arrival[] = [];
  const answers: Answer[] = [];
  const handle = async (request: ProduceRequest__Output, received: Arrival[]): Promise<ProduceResponse> => {
    const topics: ProduceResponse['topics'] = [];
    for (const t of request.topics) {
      const results: NonNullable<ProduceResponse['topics']>[number]['partitions'] = [];
      for (const p of t.partitions) {
        const arrival = received.shift() as Arrival;
        const verdict = await script(arrival);
        const log = logs[p.partition];
        let outcome = verdict === 'append' || verdict.write === true ? log.append(p.batches) : { errorCode: 'NONE' as ErrorName, errorMessage: '', baseOffset: -1n, lastOffset: -1n, duplicate: false };
        if (verdict !== 'append') {
          const keep = verdict.keepOffsets === true;
          outcome = { ...outcome, errorCode: verdict.error, errorMessage: 'scripted', baseOffset: keep ? outcome.baseOffset : -1n, lastOffset: keep ? outcome.lastOffset : -1n };
        }
        answers.push({ index: arrival.index, partition: p.partition, errorCode: outcome.errorCode, duplicate: outcome.duplicate });
        results.push({ partition: p.partition, errorCode: outcome.errorCode, errorMessage: outcome.errorMessage, baseOffset: String(outcome.baseOffset), lastOffset: String(outcome.lastOffset), logAppendTime: '-1', logStartOffset: '0' });
      }
      topics.push({ name: t.name, partitions: results });
    }
    return { correlationId: request.correlationId, topics };
  };
  const receive = (request: ProduceRequest__Output): Arrival[] => {
    const received: Arrival[] = [];
    for (const t of request.topics) {
      for (const p of t.partitions) {
        const arrival = { index: arrivals.length, partition: p.partition, bytes: Buffer.from(p.batches), headers: batchHeaders(p.batches) };
        arrivals.push(arrival);
        received.push(arrival);
      }
    }
    return received;
  };
  const broker: FakeBroker = await startFakeBroker({
    Metadata: (_call, callback) => {
      const port = options.leaderPort?.() ?? broker.port;
      callback(null, metadataAnswer(TOPIC, Array.from({ length: partitions }, () => (port === broker.port ? 1 : 2)), [{ nodeId: 1, port: broker.port }, ...(port === broker.port ? [] : [{ nodeId: 2, port }])]));
    },
    ProduceStream: (call: grpc.ServerDuplexStream<ProduceRequest__Output, ProduceResponse>) => {
      let chain = Promise.resolve();
      call.on('data', (request: ProduceRequest__Output) => {
        const received = receive(request);
        chain = chain.then(async () => {
          call.write(await handle(request, received));
        });
      });
      call.on('end', () => void chain.then(() => call.end()));
    },
  });
  running.push(broker);
  return { broker, logs, arrivals, answers };
}

function client(broker: FakeBroker, retry = fast): Kavka {
  return new Kavka({ clientId: 'idempotent', brokers: [broker.address], retry });
}

const big = (name: string) => name.padEnd(150, '.');

describe('idempotent producer', () => {
  it('calls InitProducerId once and stamps consecutive sequences per partition', async () => {
    const { broker, logs, arrivals, answers } = await startSequencedBroker(2);
    const producer = client(broker).producer({ lingerMs: 2 });
    // Concurrent sends on a producer that has not connected yet share one InitProducerId.
    const sends = Array.from({ length: 30 }, (_, i) => producer.send({ topic: TOPIC, messages: Array.from({ length: (i % 3) + 1 }, (_, j) => ({ value: `${i}-${j}`, partition: i % 2 })) }));
    await Promise.all(sends);
    for (let i = 30; i < 36; i++) await producer.send({ topic: TOPIC, messages: [{ value: `${i}-0`, partition: i % 2 }] });
    await producer.disconnect();

    expect(broker.initProducerIdRequests).toHaveLength(1);
    expect(broker.initProducerIdRequests[0]).toMatchObject({ transactionalId: '' });
    expect(broker.initProducerIdRequests[0]._producerId).toBeUndefined();
    expect(answers.every((a) => a.errorCode === 'NONE')).toBe(true);
    for (const partition of [0, 1]) {
      const headers = arrivals.filter((a) => a.partition === partition).flatMap((a) => a.headers);
      expect(headers.every((h) => h.producerId === 1000n && h.producerEpoch === 0)).toBe(true);
      let expected = 0;
      for (const h of headers) {
        expect(h.baseSequence).toBe(expected);
        expected += h.recordsCount;
      }
      const wanted = Array.from({ length: 36 }, (_, i) => i)
        .filter((i) => i % 2 === partition)
        .flatMap((i) => Array.from({ length: i < 30 ? (i % 3) + 1 : 1 }, (_, j) => `${i}-${j}`));
      expect(expected).toBe(wanted.length);
      expect(logs[partition].values()).toEqual(wanted);
    }
  });

  it('keeps a partition in order and resends identical bytes when the first of several in-flight batches fails', async () => {
    const sb = await startSequencedBroker(1, async (arrival) => {
      if (arrival.index === 1) {
        // Answer the first of a, b, c only once all three are in: b and c find the gap it leaves.
        await waitFor(() => sb.arrivals.length >= 4, 'three batches in flight');
        return { error: 'NOT_ENOUGH_REPLICAS' };
      }
      // a's first resend fails too; b and c wait behind it instead of hitting the gap again.
      if (arrival.index === 4) return { error: 'NOT_ENOUGH_REPLICAS' };
      return 'append';
    });
    // One record per batch (each fills batchSizeBytes), so each goes in its own request.
    const producer = client(sb.broker).producer({ lingerMs: 0, batchSizeBytes: 100 });
    await producer.send({ topic: TOPIC, messages: [{ value: big('w') }] });
    const results = await Promise.all(['a', 'b', 'c'].map((v) => producer.send({ topic: TOPIC, messages: [{ value: big(v) }] })));
    await producer.disconnect();

    const ooo = 'OUT_OF_ORDER_SEQUENCE_NUMBER';
    expect(sb.answers.map((a) => a.errorCode)).toEqual(['NONE', 'NOT_ENOUGH_REPLICAS', ooo, ooo, 'NOT_ENOUGH_REPLICAS', 'NONE', 'NONE', 'NONE']);
    expect(sb.arrivals.map((a) => a.headers[0].baseSequence)).toEqual([0, 1, 2, 3, 1, 1, 2, 3]);
    for (const [resent, first] of [[4, 1], [5, 1], [6, 2], [7, 3]]) expect(sb.arrivals[resent].bytes.equals(sb.arrivals[first].bytes)).toBe(true);
    expect(sb.logs[0].values().map((v) => v[0])).toEqual(['w', 'a', 'b', 'c']);
    expect(results.map(([r]) => r.baseOffset)).toEqual(['1', '2', '3']);
    expect(sb.broker.initProducerIdRequests).toHaveLength(1);
  });

  it('keeps at most 5 batches of a partition unacknowledged, merging the fresh batches queued behind them', async () => {
    const sb = await startSequencedBroker(1);
    // One request in flight: the batches that queue behind it go in the next request, merged
    // into fewer, larger batches (never more than 5 of the partition unacknowledged).
    const producer = client(sb.broker).producer({ lingerMs: 0, batchSizeBytes: 100, maxInFlightRequests: 1 });
    const values = Array.from({ length: 12 }, (_, i) => big(`v${i}`));
    const offsets = await Promise.all(values.map(async (value) => (await producer.send({ topic: TOPIC, messages: [{ value }] }))[0].baseOffset));
    await producer.disconnect();

    const headers = sb.arrivals.flatMap((a) => a.headers);
    for (const arrival of sb.arrivals) expect(arrival.headers.length).toBeLessThanOrEqual(5);
    expect(headers.length).toBeLessThan(values.length);
    // Sequences stay consecutive over merged batches: each starts where the previous one ended.
    let next = 0;
    for (const h of headers) {
      expect(h.baseSequence).toBe(next);
      next += h.lastOffsetDelta + 1;
    }
    expect(next).toBe(values.length);
    expect(sb.logs[0].values()).toEqual(values);
    // Every send() learns its own record's offset, also when its batch was merged into another.
    expect(offsets).toEqual(values.map((_, i) => String(i)));
  });

  it('resends a batch whose answer was lost and gets its original offsets, not a second copy', async () => {
    const sb = await startSequencedBroker(1, async (arrival) => {
      if (arrival.index !== 0) return 'append';
      await waitFor(() => sb.arrivals.length >= 2, 'two batches in flight');
      return { error: 'REQUEST_TIMED_OUT', write: true };
    });
    const producer = client(sb.broker).producer({ lingerMs: 0, batchSizeBytes: 100 });
    const [[a], [b]] = await Promise.all(['a', 'b'].map((v) => producer.send({ topic: TOPIC, messages: [{ value: big(v) }] })));
    await producer.disconnect();

    // b went through after a's lost write; a's resend was recognised as a duplicate.
    expect(sb.answers.map((x) => [x.errorCode, x.duplicate])).toEqual([
      ['REQUEST_TIMED_OUT', false],
      ['NONE', false],
      ['NONE', true],
    ]);
    expect(sb.arrivals[2].bytes.equals(sb.arrivals[0].bytes)).toBe(true);
    expect([a.baseOffset, b.baseOffset]).toEqual(['0', '1']);
    expect(sb.logs[0].values().map((v) => v[0])).toEqual(['a', 'b']);
  });

  it('takes DUPLICATE_SEQUENCE_NUMBER with offsets as success and retries it without', async () => {
    const sb = await startSequencedBroker(1, (arrival) => {
      if (arrival.index === 0) return { error: 'DUPLICATE_SEQUENCE_NUMBER', write: true, keepOffsets: true };
      if (arrival.index === 1) return { error: 'DUPLICATE_SEQUENCE_NUMBER' };
      return 'append';
    });
    const producer = client(sb.broker).producer({ lingerMs: 0 });
    const [a] = await producer.send({ topic: TOPIC, messages: [{ value: 'a' }] });
    const [b] = await producer.send({ topic: TOPIC, messages: [{ value: 'b' }] });
    await producer.disconnect();

    expect([a.baseOffset, b.baseOffset]).toEqual(['0', '1']);
    expect(sb.arrivals).toHaveLength(3);
    expect(sb.arrivals[2].bytes.equals(sb.arrivals[1].bytes)).toBe(true);
    expect(sb.logs[0].values()).toEqual(['a', 'b']);
  });

  it('bumps the epoch and starts every partition at sequence 0 after UNKNOWN_PRODUCER_ID', async () => {
    const sb = await startSequencedBroker(2);
    const producer = client(sb.broker).producer({ lingerMs: 0 });
    await producer.send({ topic: TOPIC, messages: [{ value: 'p0-a', partition: 0 }] });
    await producer.send({ topic: TOPIC, messages: [{ value: 'p0-b', partition: 0 }] });
    await producer.send({ topic: TOPIC, messages: [{ value: 'p1-a', partition: 1 }] });
    // Partition 1's leader forgets the producer (producer.id.expiration.ms passed).
    sb.logs[1].expireProducers();
    const [p1] = await producer.send({ topic: TOPIC, messages: [{ value: 'p1-b', partition: 1 }] });
    await producer.send({ topic: TOPIC, messages: [{ value: 'p0-c', partition: 0 }] });
    await producer.disconnect();

    expect(sb.broker.initProducerIdRequests.map((r) => [r.producerId, r.producerEpoch])).toEqual([
      [undefined, undefined],
      ['1000', 0],
    ]);
    const stamps = sb.arrivals.map((a) => [a.partition, a.headers[0].producerEpoch, a.headers[0].baseSequence]);
    expect(stamps).toEqual([
      [0, 0, 0],
      [0, 0, 1],
      [1, 0, 0],
      [1, 0, 1],
      [1, 1, 0],
      [0, 1, 0],
    ]);
    expect(sb.answers[3].errorCode).toBe('UNKNOWN_PRODUCER_ID');
    expect(p1.baseOffset).toBe('1');
    expect(sb.logs[0].values()).toEqual(['p0-a', 'p0-b', 'p0-c']);
    expect(sb.logs[1].values()).toEqual(['p1-a', 'p1-b']);
  });

  it.each(['INVALID_PRODUCER_EPOCH', 'OUT_OF_ORDER_SEQUENCE_NUMBER'] as const)('bumps the epoch and resends under it after %s with no earlier batch to explain it', async (code) => {
    const sb = await startSequencedBroker(1, (arrival) => (arrival.index === 1 ? { error: code } : 'append'));
    const producer = client(sb.broker).producer({ lingerMs: 0 });
    await producer.send({ topic: TOPIC, messages: [{ value: 'a' }] });
    const [b] = await producer.send({ topic: TOPIC, messages: [{ value: 'b' }] });
    await producer.disconnect();

    expect(sb.broker.initProducerIdRequests.map((r) => r.producerEpoch)).toEqual([undefined, 0]);
    expect(sb.arrivals.map((a) => [a.headers[0].producerEpoch, a.headers[0].baseSequence])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
    ]);
    expect(b.baseOffset).toBe('1');
    expect(sb.logs[0].values()).toEqual(['a', 'b']);
  });

  it('bumps the epoch only for the partition that needs it: another partition retries its written batch under its old epoch, then moves on', async () => {
    // Partition 0's batch is written but its answer is lost; in the same request partition 1's
    // leader rejects the producer's sequence. Re-encoding partition 0's batch under the new epoch
    // from sequence 0 would make the broker write it twice (Kafka keeps per-partition epochs).
    const sb = await startSequencedBroker(2, (arrival) => {
      if (arrival.index === 0) return { error: 'NOT_LEADER_OR_FOLLOWER', write: true };
      if (arrival.index === 1) return { error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' };
      return 'append';
    });
    const producer = client(sb.broker).producer({ lingerMs: 0 });
    const results = await producer.send({ topic: TOPIC, messages: [{ value: 'p0-a', partition: 0 }, { value: 'p1-a', partition: 1 }] });
    await producer.send({ topic: TOPIC, messages: [{ value: 'p0-b', partition: 0 }] });
    await producer.disconnect();

    expect(sb.broker.initProducerIdRequests.map((r) => r.producerEpoch)).toEqual([undefined, 0]);
    const stamps = sb.arrivals.map((a) => [a.partition, a.headers[0].producerEpoch, a.headers[0].baseSequence]);
    expect(stamps.slice(0, 2)).toEqual([
      [0, 0, 0],
      [1, 0, 0],
    ]);
    expect(stamps.slice(2).sort()).toEqual([
      [0, 0, 0],
      [0, 1, 0],
      [1, 1, 0],
    ]);
    const retried = sb.arrivals.slice(2).find((a) => a.partition === 0 && a.headers[0].producerEpoch === 0);
    expect(retried?.bytes.equals(sb.arrivals[0].bytes)).toBe(true);
    expect(sb.answers.slice(2).filter((a) => a.duplicate).map((a) => a.partition)).toEqual([0]);
    expect(results.map((r) => [r.partition, r.baseOffset])).toEqual([
      [0, '0'],
      [1, '0'],
    ]);
    expect(sb.logs[0].values()).toEqual(['p0-a', 'p0-b']);
    expect(sb.logs[1].values()).toEqual(['p1-a']);
  });

  it('bumps the epoch before sending again after a batch with a sequence failed for good', async () => {
    const sb = await startSequencedBroker(1, (arrival) => (arrival.index < 2 ? { error: 'NOT_ENOUGH_REPLICAS' } : 'append'));
    const producer = client(sb.broker, { ...fast, retries: 1 }).producer({ lingerMs: 0 });
    await expect(producer.send({ topic: TOPIC, messages: [{ value: 'lost' }] })).rejects.toMatchObject({ code: 'NOT_ENOUGH_REPLICAS' });
    await producer.send({ topic: TOPIC, messages: [{ value: 'next' }] });
    await producer.disconnect();

    expect(sb.broker.initProducerIdRequests).toHaveLength(2);
    expect(sb.arrivals.map((a) => [a.headers[0].producerEpoch, a.headers[0].baseSequence])).toEqual([
      [0, 0],
      [0, 0],
      [1, 0],
    ]);
    expect(sb.logs[0].values()).toEqual(['next']);
  });

  it('follows a moved leader with the same bytes, in order', async () => {
    let moved = false;
    const two = await startSequencedBroker(1);
    const one = await startSequencedBroker(
      1,
      async (arrival) => {
        if (arrival.index === 0) await waitFor(() => one.arrivals.length >= 2, 'two batches in flight');
        moved = true;
        return { error: 'NOT_LEADER_OR_FOLLOWER' };
      },
      { leaderPort: () => (moved ? two.broker.port : undefined) },
    );
    const producer = client(one.broker).producer({ lingerMs: 0, batchSizeBytes: 100 });
    const results = await Promise.all(['a', 'b'].map((v) => producer.send({ topic: TOPIC, messages: [{ value: big(v) }] })));
    await producer.disconnect();

    expect(one.arrivals).toHaveLength(2);
    expect(two.arrivals.map((a) => a.bytes.equals(one.arrivals[a.index].bytes))).toEqual([true, true]);
    expect(two.logs[0].values().map((v) => v[0])).toEqual(['a', 'b']);
    expect(results.map(([r]) => r.baseOffset)).toEqual(['0', '1']);
  });
});

describe('idempotence settings', () => {
  it('is off with acks 1: no InitProducerId, no producer id in batches', async () => {
    const sb = await startSequencedBroker(1);
    const producer = client(sb.broker).producer({ lingerMs: 0, acks: 1 });
    await producer.send({ topic: TOPIC, messages: [{ value: 'x' }] });
    await producer.disconnect();
    expect(sb.broker.initProducerIdRequests).toHaveLength(0);
    expect(sb.arrivals[0].headers[0]).toMatchObject({ producerId: -1n, producerEpoch: -1, baseSequence: -1 });
  });

  it('is off by default with more than 5 requests in flight', async () => {
    const sb = await startSequencedBroker(1);
    const producer = client(sb.broker).producer({ lingerMs: 0, maxInFlightRequests: 6 });
    await producer.send({ topic: TOPIC, messages: [{ value: 'x' }] });
    await producer.disconnect();
    expect(sb.broker.initProducerIdRequests).toHaveLength(0);
    expect(sb.arrivals[0].headers[0].producerId).toBe(-1n);
  });

  it('refuses idempotent: true with acks 1, with more than 5 in flight, and a send with acks 0', async () => {
    const kavka = new Kavka({ clientId: 'settings', brokers: ['127.0.0.1:1'] });
    expect(() => kavka.producer({ idempotent: true, acks: 1 })).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST', message: expect.stringMatching(/acks/) }));
    expect(() => kavka.producer({ idempotent: true, maxInFlightRequests: 6 })).toThrow(/maxInFlightRequests/);
    expect(() => kavka.producer({ acks: 1, maxInFlightRequests: 6 })).not.toThrow();

    const sb = await startSequencedBroker(1);
    const explicit = client(sb.broker).producer({ idempotent: true, lingerMs: 0 });
    await expect(explicit.send({ topic: TOPIC, acks: 0, messages: [{ value: 'x' }] })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    await explicit.disconnect();
  });

  it('sends a send() with acks 1 without idempotence when idempotence is only the default', async () => {
    const sb = await startSequencedBroker(1);
    const producer = client(sb.broker).producer({ lingerMs: 0 });
    await producer.send({ topic: TOPIC, acks: 1, messages: [{ value: 'plain' }] });
    await producer.send({ topic: TOPIC, messages: [{ value: 'idempotent' }] });
    await producer.disconnect();
    expect(sb.arrivals.map((a) => [a.headers[0].producerId, a.headers[0].baseSequence])).toEqual([
      [-1n, -1],
      [1000n, 0],
    ]);
  });

  it('wraps sequences after 2^31 - 1 to 0', () => {
    expect(incrementSequence(0, 5)).toBe(5);
    expect(incrementSequence(MAX_SEQUENCE - 5, 5)).toBe(MAX_SEQUENCE);
    expect(incrementSequence(MAX_SEQUENCE, 1)).toBe(0);
    expect(incrementSequence(MAX_SEQUENCE - 1, 3)).toBe(1);
  });
});
