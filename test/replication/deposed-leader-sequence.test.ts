// A deposed leader that still takes produce requests must not answer a producer-state error
// (OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH) from its stale log.
//
// Found by the idempotence fault runs (test/cluster/idempotence-faults.test.ts, seed 102): node 2
// led idem-1 in epoch 2 and was isolated; the controller moved leadership on (node 3 in epoch 3,
// then node 1 in epoch 4), and the new leaders acknowledged more sequences of a producer. After
// the heal node 2 had not applied those changes yet and still took produce requests: its log (and
// its producer state, which agreed with it) ended earlier, so it answered "expected first sequence
// 65, received 86". The producer bumped its epoch and re-sent batches the real leader already
// held: duplicates.
//
// One ReplicaManager (node 1) with real logs and a manual clock; the followers' fetches are made
// by calling replicaFetch directly, so nothing here depends on timing.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeRecordBatch } from '../../src/codec/record-batch.js';
import { MetadataImage } from '../../src/controller/index.js';
import { ReplicaManager, type ReplicaFetchPartitionResult } from '../../src/replication/index.js';
import { openLogManager, type LogManager, type TopicPartition } from '../../src/storage/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { KavkaError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { makeTempDir, removeTempDir, START_MS, testConfig } from '../storage/helpers/fixtures.js';

const TP: TopicPartition = { topic: 'idem', partition: 1 };
const TOPIC_ID = '5d0c6a1e-3f2b-4e8a-9c7d-1b2a3c4d5e6f';
const PID = 11n;
const LAG_MS = 1_500;

let dir: string;
let logManager: LogManager | undefined;
let manager: ReplicaManager | undefined;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await manager?.close();
  await logManager?.close();
  manager = undefined;
  logManager = undefined;
  await removeTempDir(dir);
});

function image(leader: number, leaderEpoch: number, isr: number[]): MetadataImage {
  return MetadataImage.EMPTY.replay({ type: 'Topic', name: TP.topic, topicId: TOPIC_ID, configs: {} })
    .replay({ type: 'Partition', topic: TP.topic, partition: 0, replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1, leaderEpoch: 0, partitionEpoch: 0 })
    .replay({ type: 'Partition', topic: TP.topic, partition: 1, replicas: [1, 2, 3], isr, leader, leaderEpoch, partitionEpoch: leaderEpoch });
}

function producerBatch(baseSequence: number, records = 1): Buffer {
  return encodeRecordBatch({
    records: Array.from({ length: records }, (_, i) => ({ key: null, value: Buffer.from(`s${baseSequence + i}`), timestamp: BigInt(START_MS) })),
    producerId: PID,
    producerEpoch: 0,
    baseSequence,
  });
}

/** Node 1 leading idem-1 in epoch 0 with ISR 1,2,3 (min.insync.replicas 2) and sequences 0..2 of PID in its log. */
async function startLeader(clock: ManualClock): Promise<ReplicaManager> {
  logManager = await openLogManager({ logDir: join(dir, 'data'), nodeId: 1, clusterId: 'kavka-test', clock, logger: silentLogger() });
  manager = new ReplicaManager({
    nodeId: 1,
    logManager,
    logConfigFor: () => testConfig(),
    minInsyncReplicasFor: () => 2,
    replication: {
      transport: () => Promise.reject(new Error('node 1 follows nothing here')),
      replicaLagTimeMaxMs: LAG_MS,
      fetchMaxWaitMs: 500,
      fetchMinBytes: 1,
      partitionMaxBytes: 1_048_576,
      responseMaxBytes: 10_485_760,
      fetchBackoffMs: 100,
    },
    clock,
    logger: silentLogger(),
  });
  await manager.applyImage(image(1, 0, [1, 2, 3]));
  expect(await manager.appendRecords(TP, producerBatch(0, 3), 1)).toMatchObject({ baseOffset: 0n, duplicate: false });
  return manager;
}

/** A follower's fetch in leader epoch 0 that returns at once. */
function followerFetch(rm: ReplicaManager, replicaId: number, fetchOffset: bigint): Promise<ReplicaFetchPartitionResult[]> {
  return rm.replicaFetch({
    replicaId,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 1_048_576,
    partitions: [{ topicPartition: TP, topicId: TOPIC_ID, currentLeaderEpoch: 0, fetchOffset, lastFetchedEpoch: 0, logStartOffset: 0n, maxBytes: 1_048_576 }],
  });
}

async function rejection(promise: Promise<unknown>): Promise<KavkaError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KavkaError);
  return error as KavkaError;
}

/** Waits (on events, not time) until the append has failed its sequence check and waits for the ISR. */
async function untilCheckingLeadership(rm: ReplicaManager): Promise<void> {
  await vi.waitFor(() => expect(rm.partition(TP)?.leadershipChecks).toBe(1), { timeout: 5_000, interval: 1 });
}

describe('a leader answering a producer-state error first confirms it still leads (issue: idempotence faults seed 102)', () => {
  it('answers NOT_LEADER_OR_FOLLOWER, not OUT_OF_ORDER_SEQUENCE_NUMBER, when no in-sync follower fetches from it any more', async () => {
    const clock = new ManualClock(START_MS);
    const rm = await startLeader(clock);
    // Meanwhile the controller made node 2 leader (epoch 1), which acknowledged sequences 3..9;
    // node 1 has not heard of it and its followers fetch from node 2 now.
    const answer = rm.appendRecords(TP, producerBatch(10), -1);
    await untilCheckingLeadership(rm);
    clock.advance(LAG_MS - 1);
    await Promise.resolve();
    expect(rm.partition(TP)?.leadershipChecks).toBe(1);
    clock.advance(1);
    const error = await rejection(answer);
    expect(error.code).toBe('NOT_LEADER_OR_FOLLOWER');
    expect(error.retriable).toBe(true);
    expect(error.message).toMatch(/does not answer OUT_OF_ORDER_SEQUENCE_NUMBER/);
    expect(rm.partition(TP)?.leadershipChecks).toBe(0);
    expect(rm.partition(TP)?.log.logEndOffset).toBe(3n); // nothing was written
  });

  it('answers NOT_LEADER_OR_FOLLOWER as soon as the metadata moving leadership arrives', async () => {
    const clock = new ManualClock(START_MS);
    const rm = await startLeader(clock);
    const answer = rm.appendRecords(TP, producerBatch(10), -1);
    await untilCheckingLeadership(rm);
    await rm.applyImage(image(2, 1, [2, 3]).atOffset(10));
    expect((await rejection(answer)).code).toBe('NOT_LEADER_OR_FOLLOWER');
  });

  it('answers the sequence error once min.insync.replicas - 1 followers fetched twice in its epoch after the check', async () => {
    const clock = new ManualClock(START_MS);
    const rm = await startLeader(clock);
    const answer = rm.appendRecords(TP, producerBatch(10), -1);
    await untilCheckingLeadership(rm);
    // One fetch may have been sent before the check: not enough.
    await followerFetch(rm, 2, 3n);
    await Promise.resolve();
    expect(rm.partition(TP)?.leadershipChecks).toBe(1);
    await followerFetch(rm, 2, 3n);
    const error = await rejection(answer);
    expect(error.code).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(error.message).toMatch(/expected first sequence 3, received 10/);
  });

  it('answers a leader with no other in-sync replica at once, as Kafka does', async () => {
    const clock = new ManualClock(START_MS);
    const rm = await startLeader(clock);
    await rm.applyImage(image(1, 0, [1]).atOffset(10));
    expect((await rejection(rm.appendRecords(TP, producerBatch(10), 1))).code).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
  });
});
