// Kavka issue 6: "full disk" and "bit flip" faults are survivable. In-process 3-node clusters
// (RF 3, min.insync.replicas 2) with real storage; the disk fault is injected through the storage
// interface (FaultInjectingFs) of one node, the bit flip by writing one byte of a segment file.
// Each run ends with the history checker: no acknowledged record lost, no offset with two
// records, per-producer order, no duplicates, replicas byte-identical below the high watermark.
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Kavka } from '../../src/client/index.js';
import { scanBatches } from '../../src/codec/record-batch.js';
import { FaultInjectingFs } from '../../src/storage/index.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';
import { assignments, createTopic, others, SETTLE_MS, startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { checkPartitions, formatViolations, History, leaderOf, rawProduce, recordedSend, unary } from '../helpers/history.js';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

const CONFIG = {
  // The ISR changes here by fencing (an offline dir) and by catching up, never by lag.
  'replica.lag.time.max.ms': '20000',
  'replica.fetch.wait.max.ms': '100',
  'replica.fetch.backoff.ms': '50',
  'min.insync.replicas': '2',
  'log.segment.bytes': '16384',
  'log.dir.offline.probe.interval.ms': '100',
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function isrOf(c: TestCluster, via: number, topic: string, partition: number): Promise<number[]> {
  return (await leaderOf(c, via, topic, partition)).isr;
}

it('ENOSPC on one node: its log dir goes offline, leadership moves, the ISR shrinks, idempotent acks=all producers keep succeeding; once space returns it rejoins and nothing is lost', async () => {
  const victim = 2;
  const fs = new FaultInjectingFs();
  const c = (cluster = await startTestCluster(3, CONFIG, { nodeFs: { [victim]: fs } }));
  const controller = await c.waitForActiveController();
  const [a, b] = others(c.ids, victim);
  const topic = 'full-disk';
  // The victim leads partition 0 and follows partition 1.
  expect((await createTopic(c, controller, { name: topic, assignments: assignments([[victim, a, b], [a, victim, b]]) })).errorCode).toBe('NONE');

  const history = new History();
  history.addProducer('idempotent', { noDuplicates: true, ordered: true });
  const client = new Kavka({ clientId: 'disk-faults', brokers: c.ids.map((id) => c.clientAddress(id)), retry: { retries: 80, initialRetryTimeMs: 20, maxRetryTimeMs: 200 }, requestTimeoutMs: 3_000 });
  const producer = client.producer({ acks: -1, idempotent: true, lingerMs: 0, timeoutMs: 2_000 });
  let stopping = false;
  let okCount = 0;
  const loop = (async () => {
    for (let i = 0; !stopping; i++) {
      const op = await recordedSend(history, 'idempotent', producer, topic, i % 2, [history.freshValue('idempotent'), history.freshValue('idempotent')], -1);
      if (op.outcome?.kind === 'ok') okCount += 1;
      await sleep(5);
    }
  })();
  try {
    await c.waitFor(() => okCount >= 20, SETTLE_MS, '20 acknowledged sends before the fault');
    const { leaderEpoch } = await leaderOf(c, a, topic, 0);

    // The disk fills up: every write and fsync through the victim's storage fails.
    fs.failAlways('write', 'ENOSPC');
    fs.failAlways('datasync', 'ENOSPC');
    const victimBroker = c.broker(victim);
    await c.waitFor(() => victimBroker.logManager.state.kind === 'offline', SETTLE_MS, 'the victim to take its log dir offline');
    await c.waitFor(
      async () => {
        const p0 = await leaderOf(c, a, topic, 0);
        const p1 = await leaderOf(c, a, topic, 1);
        return p0.leader >= 0 && p0.leader !== victim && p0.leaderEpoch > leaderEpoch && !p0.isr.includes(victim) && !p1.isr.includes(victim);
      },
      SETTLE_MS,
      'leadership of partition 0 to move and the victim to leave both ISRs',
    );
    await c.waitFor(() => victimBroker.controller.image.brokers.get(victim)?.fenced === true, SETTLE_MS, 'the victim to see itself fenced');
    // Producers keep succeeding without it (ISR of 2 meets min.insync.replicas).
    const okBefore = okCount;
    await c.waitFor(() => okCount >= okBefore + 20, SETTLE_MS, '20 more acknowledged sends while the victim is offline');
    expect(victimBroker.logManager.state.kind).toBe('offline');
    const metrics = await (await fetch(`http://${victimBroker.adminAddress}/metrics`)).text();
    expect(metrics).toMatch(/kavka_log_dir_offline\{node_id="2"\} 1/);
    expect(metrics).toMatch(/kavka_log_dir_failures_total\{node_id="2"\} 1/);

    // Space returns: the probe works, the dir reopens through recovery, the replicas catch up.
    fs.clearFaults();
    await c.waitFor(() => victimBroker.logManager.state.kind === 'online', SETTLE_MS, 'the victim to reopen its log dir');
    await c.waitFor(
      async () => (await isrOf(c, a, topic, 0)).includes(victim) && (await isrOf(c, a, topic, 1)).includes(victim),
      SETTLE_MS,
      'the victim to rejoin both ISRs',
    );
    const okAfter = okCount;
    await c.waitFor(() => okCount >= okAfter + 10, SETTLE_MS, 'sends acknowledged after it rejoined');
  } finally {
    stopping = true;
    await loop;
    await producer.disconnect();
  }
  expect(c.broker(victim).logManager.failures).toBe(1);
  const violations = await checkPartitions(c, history, topic, 2, 20_000);
  expect(violations, `violations:\n${formatViolations(violations)}`).toEqual([]);
  expect(history.ops.filter((op) => op.outcome?.kind === 'ok').length).toBeGreaterThanOrEqual(50);
});

/** Flips one bit inside the records of a batch in the middle of `node`'s first (sealed) segment, in place. Returns the file and the batch's position. */
async function flipBitInSealedSegment(c: TestCluster, node: number, topic: string): Promise<{ file: string; position: number }> {
  const directory = join(c.nodes.get(node)!.dataDir, `${topic}-0`);
  const segments = (await readdir(directory)).filter((n) => /^\d{20}\.log$/.test(n)).sort();
  expect(segments.length).toBeGreaterThanOrEqual(3);
  const file = join(directory, segments[0]);
  const handle = await open(file, 'r+');
  try {
    const { size } = await stat(file);
    const bytes = Buffer.alloc(size);
    await handle.read(bytes, 0, size, 0);
    const batches = scanBatches(bytes, { verifyCrc: true }).batches;
    const victim = batches[Math.floor(batches.length / 2)];
    const at = victim.position + victim.size - 5;
    await handle.write(Buffer.from([bytes[at] ^ 0x08]), 0, 1, at);
    return { file, position: victim.position };
  } finally {
    await handle.close();
  }
}

/** A consumer Fetch of partition 0 from offset 0 to `node`. */
async function fetchFrom(c: TestCluster, node: number, topic: string): Promise<{ errorCode: string; errorMessage: string; bytes: number; corrupt: boolean }> {
  const answer = await unary<FetchResponse__Output>(c.raw(node), 'Fetch', { maxWaitMs: 0, minBytes: 0, maxBytes: 4 << 20, topics: [{ name: topic, partitions: [{ partition: 0, fetchOffset: '0', partitionMaxBytes: 4 << 20 }] }] }, 5_000);
  if (!answer.ok) throw new Error(`Fetch from node ${node}: ${answer.details}`);
  const p = answer.value.topics[0].partitions[0];
  return { errorCode: p.errorCode, errorMessage: p.errorMessage, bytes: p.batches.length, corrupt: scanBatches(p.batches, { verifyCrc: true }).stop.kind !== 'end' };
}

/** `count` acknowledged acks=all produces of 4 records of ~130 bytes to `node` (definite refusals retried). */
async function produceRecords(c: TestCluster, history: History, node: number, topic: string, count: number): Promise<void> {
  for (let i = 0; i < count; ) {
    const values = Array.from({ length: 4 }, () => `${history.freshValue('raw')}-${'x'.repeat(120)}`);
    const { op } = await rawProduce(history, 'raw', c.raw(node), topic, 0, values, -1, 3_000, node);
    if (op.outcome?.kind === 'ok') i += 1;
    else if (op.outcome?.kind === 'unknown') throw new Error(`produce to node ${node}: ${JSON.stringify(op.outcome)}`);
    else await sleep(50);
  }
}

it.each([
  ['while the follower runs', 'running'],
  ['while the follower is stopped, then restarted', 'stopped'],
] as const)('a bit flip in a follower sealed segment %s: when it must serve, the CRC catches it, nothing corrupt is served, leadership moves, and it repairs and ends byte-identical', async (_what, when) => {
  const c = (cluster = await startTestCluster(3, CONFIG));
  const controller = await c.waitForActiveController();
  // The follower is next in line: when the leader stops, it leads. The third replica is its fallback.
  const [leader, follower, third] = [...others(c.ids, controller), controller];
  const topic = `bit-flip-${when}`;
  expect((await createTopic(c, controller, { name: topic, assignments: assignments([[leader, follower, third]]) })).errorCode).toBe('NONE');
  const history = new History();
  history.addProducer('raw', { noDuplicates: true, ordered: true });
  await produceRecords(c, history, leader, topic, 200);
  await c.waitFor(async () => (await isrOf(c, leader, topic, 0)).length === 3 && c.broker(follower).logManager.getLog({ topic, partition: 0 })?.logEndOffset === c.broker(leader).logManager.getLog({ topic, partition: 0 })?.logEndOffset, SETTLE_MS, 'every replica caught up');

  let damaged: { file: string; position: number };
  if (when === 'running') {
    damaged = await flipBitInSealedSegment(c, follower, topic);
  } else {
    await c.stopNode(follower);
    damaged = await flipBitInSealedSegment(c, follower, topic);
    // A clean shutdown: under the default policy the restart trusts the sealed segment's index.
    await c.restartNode(follower);
    await c.waitFor(async () => (await isrOf(c, leader, topic, 0)).includes(follower), SETTLE_MS, 'the restarted follower back in the ISR');
  }
  const followerBroker = c.broker(follower);
  expect(followerBroker.logManager.corruptionRepairs).toBe(0);

  // Make it serve: the leader stops, the follower (next in replica order, in the ISR) leads.
  await c.stopNode(leader);
  const answers: { errorCode: string; bytes: number; corrupt: boolean }[] = [];
  await c.waitFor(
    async () => {
      const answer = await fetchFrom(c, follower, topic);
      answers.push(answer);
      // Until its high watermark passes the damaged batch (a new leader learns it from its followers), it serves less.
      return answer.errorCode === 'KAFKA_STORAGE_ERROR' ? answer : undefined;
    },
    SETTLE_MS,
    'the follower, as leader, to refuse a Fetch that covers the damaged batch',
  );
  // Whatever it answered before, nothing it served failed its CRC; the read that met the damage served nothing.
  for (const answer of answers) expect(answer.corrupt).toBe(false);
  expect(answers.at(-1)).toMatchObject({ errorCode: 'KAFKA_STORAGE_ERROR', bytes: 0 });

  // It repairs itself: offline for corruption, fenced, leadership to the third replica, reopened.
  await c.waitFor(async () => (await leaderOf(c, third, topic, 0)).leader === third, SETTLE_MS, 'leadership to move to the third replica');
  await c.waitFor(() => followerBroker.logManager.corruptionRepairs === 1 && followerBroker.logManager.state.kind === 'online', SETTLE_MS, 'the follower to repair the segment and reopen');
  const kept = (await readdir(join(c.nodes.get(follower)!.dataDir, `${topic}-0`))).filter((n) => n.endsWith('.log.corrupt'));
  expect(kept).toEqual([`${damaged.file.slice(damaged.file.lastIndexOf('/') + 1)}.corrupt`]);
  await c.waitFor(async () => (await isrOf(c, third, topic, 0)).includes(follower), SETTLE_MS, 'the repaired follower back in the ISR');
  await c.waitFor(() => followerBroker.logManager.getLog({ topic, partition: 0 })?.refetchRequired === undefined, SETTLE_MS, 'the refetch-required marker to go');

  await c.restartNode(leader);
  const violations = await checkPartitions(c, history, topic, 1, 20_000);
  expect(violations, `violations:\n${formatViolations(violations)}`).toEqual([]);
  expect(history.ops.filter((op) => op.outcome?.kind === 'ok')).toHaveLength(200);
});

it('the last ISR member repaired after corruption refuses to lead: the partition stays unavailable rather than serve a log that may lack acknowledged records (no KIP-966 here)', async () => {
  // Every sealed segment is CRC-checked when a partition opens, so the restart finds the damage.
  const c = (cluster = await startTestCluster(3, { ...CONFIG, 'log.recovery.verify.sealed.segments': 'always' }));
  const controller = await c.waitForActiveController();
  const [last, other] = others(c.ids, controller);
  const topic = 'last-isr-member';
  expect((await createTopic(c, controller, { name: topic, assignments: assignments([[last, other]]), configs: { 'min.insync.replicas': '1' } })).errorCode).toBe('NONE');
  const history = new History();
  history.addProducer('raw', { noDuplicates: true, ordered: true });
  await produceRecords(c, history, last, topic, 150);
  await c.stopNode(other);
  await c.waitFor(async () => (await isrOf(c, controller, topic, 0)).join() === String(last), SETTLE_MS, `the ISR to shrink to node ${last}`);
  await c.stopNode(last);
  await c.waitFor(async () => (await leaderOf(c, controller, topic, 0)).leader === -1, SETTLE_MS, 'the partition to go offline with its last ISR member');
  await flipBitInSealedSegment(c, last, topic);

  const broker = await c.restartNode(last);
  await c.waitFor(() => broker.logManager.getLog({ topic, partition: 0 }) !== undefined, SETTLE_MS, 'the partition to open on the restarted node');
  expect(broker.logManager.corruptionRepairs).toBe(1);
  const log = broker.logManager.getLog({ topic, partition: 0 });
  expect(log?.refetchRequired).toBeDefined();
  // Elected again (the last ISR member), but it does not serve the truncated log as complete.
  const view = await c.waitFor(async () => {
    const v = await leaderOf(c, controller, topic, 0);
    return v.leader === last ? v : undefined;
  }, SETTLE_MS, `node ${last} to be elected as the last ISR member`);
  expect(view.isr).toEqual([last]);
  const answer = await c.waitFor(async () => {
    const a = await fetchFrom(c, last, topic);
    return a.errorCode === 'NOT_LEADER_OR_FOLLOWER' ? undefined : a;
  }, SETTLE_MS, 'an answer from the elected leader');
  expect(answer).toMatchObject({ errorCode: 'KAFKA_STORAGE_ERROR', bytes: 0 });
  expect(answer.errorMessage).toMatch(/repaired after a corrupt batch .* does not lead/);
  const produced = await rawProduce(history, 'raw', c.raw(last), topic, 0, ['refused'], -1, 3_000, last);
  expect(produced.op.outcome?.kind).not.toBe('ok');
  expect(String((produced.op.outcome as { error: string }).error)).toMatch(/KAFKA_STORAGE_ERROR/);
  // The other replica, out of the ISR, is not elected either (unclean election is off).
  await c.restartNode(other);
  await c.waitFor(() => c.broker(controller).controller.image.isUnfenced(other), SETTLE_MS, `node ${other} unfenced`);
  expect(await leaderOf(c, controller, topic, 0)).toMatchObject({ leader: last, isr: [last] });
});
