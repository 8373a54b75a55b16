// While an ISR expansion is on its way to the controller, the leader's high watermark counts the
// new member too (Kafka's maximalIsr, PendingExpandIsr).
//
// Found by the idempotence fault runs (test/cluster/idempotence-faults.test.ts, seeds 104 and
// 155): node 2 restarted, caught up and was added to the ISR of idem-1; the controller committed
// the expansion together with moving leadership back to node 2, its preferred replica. Until the
// old leader applied that image it advanced the HW over its old ISR, without node 2, and
// acknowledged records node 2 never got; node 2 then led from its shorter log and the offsets of
// those acknowledged records were given to other records.
//
// One ReplicaManager (node 1) with real logs and a manual clock; the followers' fetches are made
// by calling replicaFetch directly and AlterPartition never answers, so nothing here depends on timing.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeRecordBatch } from '../../src/codec/record-batch.js';
import { MetadataImage, type AlterPartitionRequest } from '../../src/controller/index.js';
import { AlterPartitionRefused, ReplicaManager } from '../../src/replication/index.js';
import { openLogManager, type LogManager, type TopicPartition } from '../../src/storage/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { makeTempDir, removeTempDir, START_MS, testConfig } from '../storage/helpers/fixtures.js';

const TP: TopicPartition = { topic: 'idem', partition: 0 };
const TOPIC_ID = '8e6d4c2a-1b3f-4a5c-9d7e-0f1a2b3c4d5e';

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

function image(isr: number[], partitionEpoch: number): MetadataImage {
  return MetadataImage.EMPTY.replay({ type: 'Topic', name: TP.topic, topicId: TOPIC_ID, configs: {} })
    .replay({ type: 'Partition', topic: TP.topic, partition: 0, replicas: [1, 2, 3], isr, leader: 1, leaderEpoch: 0, partitionEpoch })
    .atOffset(10 + partitionEpoch);
}

/** Node 1 leading in epoch 0 with ISR 1,3 (min.insync.replicas 2); AlterPartition requests are kept and never answered. */
async function startLeader(clock: ManualClock, alterRequests: AlterPartitionRequest[], answer: () => Promise<void> = () => new Promise<void>(() => undefined)): Promise<ReplicaManager> {
  logManager = await openLogManager({ logDir: join(dir, 'data'), nodeId: 1, clusterId: 'kavka-test', clock, logger: silentLogger() });
  manager = new ReplicaManager({
    nodeId: 1,
    logManager,
    logConfigFor: () => testConfig(),
    minInsyncReplicasFor: () => 2,
    alterIsr: (request) => {
      alterRequests.push(request);
      return answer();
    },
    replication: {
      transport: () => Promise.reject(new Error('node 1 follows nothing here')),
      replicaLagTimeMaxMs: 1_500,
      fetchMaxWaitMs: 500,
      fetchMinBytes: 1,
      partitionMaxBytes: 1_048_576,
      responseMaxBytes: 10_485_760,
      fetchBackoffMs: 100,
    },
    clock,
    logger: silentLogger(),
  });
  await manager.applyImage(image([1, 3], 0));
  return manager;
}

async function followerFetch(rm: ReplicaManager, replicaId: number, fetchOffset: bigint): Promise<void> {
  const [result] = await rm.replicaFetch({
    replicaId,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 1_048_576,
    partitions: [{ topicPartition: TP, topicId: TOPIC_ID, currentLeaderEpoch: 0, fetchOffset, lastFetchedEpoch: fetchOffset === 0n ? -1 : 0, logStartOffset: 0n, maxBytes: 1_048_576 }],
  });
  expect(result.errorCode).toBe('NONE');
}

const record = encodeRecordBatch({ records: [{ key: null, value: Buffer.from('acknowledged'), timestamp: BigInt(START_MS) }] });

/** Waits (on events, not time) until the leader's append is durable in its log. */
async function untilWritten(rm: ReplicaManager): Promise<void> {
  await vi.waitFor(() => expect(rm.partition(TP)?.log.durableEndOffset).toBe(1n), { timeout: 5_000, interval: 1 });
}

/** Lets every settled promise run its callbacks. */
const drain = () => new Promise((resolve) => setImmediate(resolve));

describe('the leader HW while an ISR expansion is pending (issue: idempotence faults seeds 104, 155)', () => {
  it('does not acknowledge acks=all past the log end of a member the expansion adds, before the controller answers', async () => {
    const alterRequests: AlterPartitionRequest[] = [];
    const rm = await startLeader(new ManualClock(START_MS), alterRequests);
    await followerFetch(rm, 3, 0n);
    await followerFetch(rm, 2, 0n); // caught up: node 1 asks to add it
    expect(alterRequests.map((r) => r.newIsr)).toEqual([[1, 3, 2]]);

    let acknowledged = false;
    const append = rm.appendRecords(TP, Buffer.from(record), -1).then((result) => {
      acknowledged = true;
      return result;
    });
    await untilWritten(rm);
    await followerFetch(rm, 3, 0n);
    await followerFetch(rm, 3, 1n);
    await drain();
    // The committed ISR may be 1,3,2 already (and node 2 its leader): node 2 lacks offset 0.
    expect(rm.partition(TP)?.highWatermark).toBe(0n);
    expect(acknowledged).toBe(false);

    await followerFetch(rm, 2, 1n);
    expect(await append).toMatchObject({ baseOffset: 0n });
    expect(rm.partition(TP)?.highWatermark).toBe(1n);
  });

  it('counts the image ISR alone again once an image with a newer partition epoch shows the outcome', async () => {
    const alterRequests: AlterPartitionRequest[] = [];
    const rm = await startLeader(new ManualClock(START_MS), alterRequests);
    await followerFetch(rm, 3, 0n);
    await followerFetch(rm, 2, 0n);
    const append = rm.appendRecords(TP, Buffer.from(record), -1);
    await untilWritten(rm);
    await followerFetch(rm, 3, 0n);
    await followerFetch(rm, 3, 1n);
    expect(rm.partition(TP)?.highWatermark).toBe(0n);

    // The expansion was not committed; another change was (the controller's view: ISR 1,3 again).
    await rm.applyImage(image([1, 3], 1));
    await followerFetch(rm, 3, 1n);
    expect(await append).toMatchObject({ baseOffset: 0n });
  });

  it('counts the image ISR alone again once the controller refused the expansion (nothing was committed)', async () => {
    // E.g. a broker in controlled shutdown fetched once more and looked caught up: the controller
    // refuses it as fenced, and it must not hold the new leader's HW until the lag check.
    const alterRequests: AlterPartitionRequest[] = [];
    const rm = await startLeader(new ManualClock(START_MS), alterRequests, () => Promise.reject(new AlterPartitionRefused('NOT_LEADER_OR_FOLLOWER', 'broker 2 is fenced and cannot join the ISR')));
    await followerFetch(rm, 3, 0n);
    await followerFetch(rm, 2, 0n);
    expect(alterRequests.map((r) => r.newIsr)).toEqual([[1, 3, 2]]);
    await drain();
    expect(rm.partition(TP)?.pendingIsr).toBeUndefined();
    const append = rm.appendRecords(TP, Buffer.from(record), -1);
    await untilWritten(rm);
    await followerFetch(rm, 3, 1n);
    expect(await append).toMatchObject({ baseOffset: 0n });
  });
});
