// Log divergence between replicas: the scenarios in which Kafka (KIP-101, KIP-279) and Jepsen found
// replicas keeping different records at one offset, or losing acknowledged ones. Each runs on
// in-process brokers over real gRPC, with inter-node links through fault proxies where a link must
// be cut, and ends with the history checker: no acknowledged record lost, no offset with two
// records, replicas byte-identical below the high watermark. Each also checks by name what the
// scenario is about (which unacknowledged records must be gone, and where).
import { afterEach, expect, it } from 'vitest';
import { assignments, createTopic, others, SETTLE_MS, startTestCluster, type TestCluster } from '../helpers/cluster.js';
import {
  checkPartitions,
  formatViolations,
  History,
  leaderOf,
  rawProduce,
  unary,
  waitConverged,
  type Acks,
  type ProduceOp,
} from '../helpers/history.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';
import { decodeRecordBatch, scanBatches } from '../../src/codec/record-batch.js';
import { appendFile, readdir, readFile, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

// The ISR changes here only by fencing: every cut is far shorter than the lag time.
const CONFIG = {
  'replica.lag.time.max.ms': '20000',
  'replica.fetch.wait.max.ms': '100',
  'replica.fetch.backoff.ms': '50',
  'min.insync.replicas': '2',
};

const P = 0;

/** A history with the one raw producer; `ordered` unless the test sends concurrent requests. */
function newHistory(ordered = true): History {
  const h = new History();
  h.addProducer('raw', { noDuplicates: true, ordered });
  return h;
}

/**
 * Produces `count` fresh values (one record per request) to `node` with the given acks; a
 * definite refusal (the node has not applied its leadership yet) is retried with a fresh value,
 * anything else must be acknowledged. Returns the acknowledged operations.
 */
async function produceOk(c: TestCluster, h: History, node: number, topic: string, count: number, acks: Acks, tag: string): Promise<ProduceOp[]> {
  const done: ProduceOp[] = [];
  const deadline = Date.now() + SETTLE_MS;
  while (done.length < count) {
    const { op } = await rawProduce(h, 'raw', c.raw(node), topic, P, [`${tag}-${h.freshValue('raw')}`], acks, 3_000);
    if (op.outcome?.kind === 'ok') done.push(op);
    else if (op.outcome?.kind === 'unknown' || Date.now() > deadline) {
      const dump: string[] = [];
      for (const id of c.runningIds()) {
        const text = await (await fetch(`http://${c.broker(id).adminAddress}/metrics`)).text();
        dump.push(...text.split('\n').filter((l) => /^kavka_partition_(high_watermark|log_end_offset|in_sync)/.test(l) && l.includes(topic)).map((l) => `node ${id}: ${l}`));
        const img = c.broker(id).controller.image.topic(topic)?.partitions[P];
        dump.push(`node ${id} image: ${JSON.stringify(img)}`);
      }
      throw new Error(`produce ${tag} to node ${node} (acks=${acks}): ${JSON.stringify(op.outcome)}\n${dump.join('\n')}`);
    }
    else await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return done;
}

function valuesOf(ops: readonly ProduceOp[]): string[] {
  return ops.flatMap((op) => op.values);
}

function logEnd(c: TestCluster, node: number, topic: string): bigint {
  const log = c.broker(node).logManager.getLog({ topic, partition: P });
  if (log === undefined) throw new Error(`node ${node} has no log of ${topic}`);
  return log.logEndOffset;
}

/** Waits until node `via` names a leader for which `accept` holds; returns it and its epoch. */
async function waitLeader(c: TestCluster, via: number, topic: string, accept: (leader: number, epoch: number) => boolean, what: string): Promise<{ leader: number; leaderEpoch: number; isr: number[] }> {
  return c.waitFor(
    async () => {
      const view = await leaderOf(c, via, topic, P);
      return view.leader >= 0 && accept(view.leader, view.leaderEpoch) ? view : undefined;
    },
    SETTLE_MS,
    what,
  );
}

/** The leader's high watermark as node `node` answers a Fetch (a follower answers with its own). */
async function highWatermarkAt(c: TestCluster, node: number, topic: string): Promise<bigint> {
  const answer = await unary<FetchResponse__Output>(c.raw(node), 'Fetch', { maxWaitMs: 0, minBytes: 0, maxBytes: 1024, topics: [{ name: topic, partitions: [{ partition: P, fetchOffset: '0', partitionMaxBytes: 1024 }] }] }, 5_000);
  if (!answer.ok) throw new Error(`Fetch from node ${node}: ${answer.details}`);
  return BigInt(answer.value.topics[0].partitions[0].highWatermark);
}

/** Converges, reads back, compares replicas; fails with the violations. Returns the values the leader holds, in offset order. */
async function checkAll(c: TestCluster, h: History, topic: string): Promise<string[]> {
  const violations = await checkPartitions(c, h, topic, 1, 20_000);
  expect(violations, `violations:\n${formatViolations(violations)}`).toEqual([]);
  const final = h.observations.filter((o) => o.final && o.source.startsWith('leader')).at(-1);
  if (final === undefined) throw new Error('no final read');
  return final.records.map((r) => r.value ?? '<null>');
}

it('KIP-101: records only the old leader has (acks=1, followers cut off) are truncated when it returns; acknowledged ones survive', async () => {
  const c = (cluster = await startTestCluster(3, CONFIG, { proxies: true }));
  const mesh = c.mesh!;
  const controller = await c.waitForActiveController();
  // Lead away from the controller, so cutting the followers' links to the leader leaves Raft and heartbeats alone.
  const [leader, ...followers] = [...others(c.ids, controller), controller];
  const topic = 'kip101';
  expect((await createTopic(c, controller, { name: topic, assignments: assignments([[leader, ...followers]]) })).errorCode).toBe('NONE');
  const h = newHistory();
  const committed = await produceOk(c, h, leader, topic, 10, -1, 'committed');
  const { leaderEpoch } = await leaderOf(c, leader, topic, P);

  // The followers' fetches to the leader vanish: what the leader appends now only it has.
  for (const f of followers) mesh.cutLink(f, leader, 'blackhole');
  const hwBefore = await highWatermarkAt(c, leader, topic);
  const onlyLeader = await produceOk(c, h, leader, topic, 5, 1, 'leader-only');
  expect(logEnd(c, leader, topic)).toBe(hwBefore + 5n);
  for (const f of followers) expect(logEnd(c, f, topic)).toBe(hwBefore);
  // Never committed: the HW did not move past the leader-only records.
  expect(await highWatermarkAt(c, leader, topic)).toBe(hwBefore);

  await c.crashNode(leader);
  mesh.heal();
  const next = await waitLeader(c, controller, topic, (l, e) => l !== leader && e > leaderEpoch, 'a new leader among the followers');
  const after = await produceOk(c, h, next.leader, topic, 10, -1, 'after');
  // The new leader never had the leader-only records: its first new record takes their first offset.
  expect(after[0].outcome).toEqual({ kind: 'ok', baseOffset: hwBefore });

  await c.restartNode(leader);
  const values = await checkAll(c, h, topic);
  expect(values).toEqual([...valuesOf(committed), ...valuesOf(after)]);
  for (const v of valuesOf(onlyLeader)) expect(values).not.toContain(v);
});

it('KIP-101: the leader crashes the moment an acks=all answer arrives, with more in flight; every acknowledged record survives', async () => {
  const c = (cluster = await startTestCluster(3, CONFIG));
  const controller = await c.waitForActiveController();
  const [leader, ...followers] = [...others(c.ids, controller), controller];
  const topic = 'kip101-inflight';
  expect((await createTopic(c, controller, { name: topic, assignments: assignments([[leader, ...followers]]) })).errorCode).toBe('NONE');
  const h = newHistory(false);
  await produceOk(c, h, leader, topic, 5, -1, 'warmup');
  const { leaderEpoch } = await leaderOf(c, leader, topic, P);

  // Requests in flight at once: the first answer comes as soon as the ISR has its record, while
  // the followers may not have heard the new HW yet and later records are partly replicated.
  let crash: Promise<void> | undefined;
  const inFlight = Array.from({ length: 30 }, (_, i) =>
    rawProduce(h, 'raw', c.raw(leader), topic, P, [`inflight-${i}-${h.freshValue('raw')}`], -1, 3_000).then((r) => {
      if (r.op.outcome?.kind === 'ok') crash ??= c.crashNode(leader);
      return r;
    }),
  );
  await Promise.all(inFlight);
  expect(crash, 'some acks=all produce was acknowledged before the crash').toBeDefined();
  await crash;
  await waitLeader(c, controller, topic, (l, e) => l !== leader && e > leaderEpoch, 'a new leader among the followers');
  await c.restartNode(leader);
  await checkAll(c, h, topic);
  expect(h.ops.some((op) => op.outcome?.kind === 'ok' && op.values[0].startsWith('inflight'))).toBe(true);
});

it('KIP-101: a follower that fetched records the HW never covered truncates them when a replica without them is elected', async () => {
  const c = (cluster = await startTestCluster(3, CONFIG, { proxies: true }));
  const mesh = c.mesh!;
  const controller = await c.waitForActiveController();
  // G is second in replica order, so it is elected when L fails; F is the follower that fetched.
  const [leader, fetched] = others(c.ids, controller);
  const g = controller;
  const topic = 'kip101-fetched';
  expect((await createTopic(c, controller, { name: topic, assignments: assignments([[leader, g, fetched]]) })).errorCode).toBe('NONE');
  const h = newHistory(false); // the in-flight requests overlap
  const committed = await produceOk(c, h, leader, topic, 10, -1, 'committed');
  const { leaderEpoch } = await leaderOf(c, leader, topic, P);
  const hw = await highWatermarkAt(c, leader, topic);

  // G stops fetching; F fetches the new records, and then its next fetch (which would tell the
  // leader how far it got) is cut too: the HW stays below them, their acks=all never comes.
  mesh.cutLink(g, leader, 'blackhole');
  const inFlight = Array.from({ length: 4 }, () => rawProduce(h, 'raw', c.raw(leader), topic, P, [`uncommitted-${h.freshValue('raw')}`], -1, 15_000));
  await c.waitFor(() => logEnd(c, leader, topic) === hw + 4n || undefined, SETTLE_MS, 'the leader to append the in-flight records');
  await c.waitFor(() => logEnd(c, fetched, topic) === hw + 4n || undefined, SETTLE_MS, 'F to fetch them');
  mesh.cutLink(fetched, leader, 'blackhole');
  expect(await highWatermarkAt(c, leader, topic)).toBe(hw);
  expect(logEnd(c, g, topic)).toBe(hw);

  await c.crashNode(leader);
  mesh.heal();
  for (const { op } of await Promise.all(inFlight)) expect(op.outcome?.kind).toBe('unknown');
  await waitLeader(c, controller, topic, (l, e) => l === g && e > leaderEpoch, `G (node ${g}) to lead`);
  // G writes new records at the offsets F holds uncommitted ones at.
  const after = await produceOk(c, h, g, topic, 6, -1, 'after');
  expect(after[0].outcome).toEqual({ kind: 'ok', baseOffset: hw });

  await c.restartNode(leader);
  const values = await checkAll(c, h, topic);
  expect(values).toEqual([...valuesOf(committed), ...valuesOf(after)]);
  for (const { op } of await Promise.all(inFlight)) expect(values).not.toContain(op.values[0]);
});

it('KIP-279: two leader changes in a row while the first leader is offline; a replica with records of an epoch the new leader never saw truncates to the right offset', async () => {
  // Five voters, the partition on three of them, so the controller is never one of its replicas
  // and a quorum survives two replicas down.
  const c = (cluster = await startTestCluster(5, CONFIG, { proxies: true }));
  const mesh = c.mesh!;
  const controller = await c.waitForActiveController();
  const [a, b, cc] = others(c.ids, controller);
  const topic = 'kip279';
  expect((await createTopic(c, controller, { name: topic, assignments: assignments([[a, b, cc]]) })).errorCode).toBe('NONE');
  const h = newHistory();
  const m1 = await produceOk(c, h, a, topic, 5, -1, 'm1');
  const e1 = (await leaderOf(c, controller, topic, P)).leaderEpoch;

  // Epoch e1: A appends m2; C fetches it, B does not (B's link to A is cut).
  mesh.cutLink(b, a, 'blackhole');
  mesh.cutLink(cc, b, 'blackhole'); // C will not fetch from B either, once B leads
  const m2 = await produceOk(c, h, a, topic, 3, 1, 'm2');
  const endM2 = logEnd(c, a, topic);
  await c.waitFor(() => logEnd(c, cc, topic) === endM2, SETTLE_MS, 'C to fetch m2');
  expect(logEnd(c, b, topic)).toBe(endM2 - 3n);

  // A fails; B (first live ISR member) leads epoch e2 and appends m3, which only B has.
  await c.crashNode(a);
  mesh.healLink(b, a);
  const e2 = (await waitLeader(c, controller, topic, (l, e) => l === b && e > e1, `B (node ${b}) to lead`)).leaderEpoch;
  const m3 = await produceOk(c, h, b, topic, 2, 1, 'm3');
  expect(logEnd(c, cc, topic)).toBe(endM2);

  // B fails; C leads epoch e3. C has m2 (epoch e1) where B has m3 (epoch e2); C never saw e2.
  await c.crashNode(b);
  mesh.healLink(cc, b);
  const e3 = (await waitLeader(c, controller, topic, (l, e) => l === cc && e > e2, `C (node ${cc}) to lead`)).leaderEpoch;
  expect(e3).toBeGreaterThan(e2);

  // B returns: asked for epoch e2, C answers (e1, end of m2); B must cut at its own end of e1 (the
  // start of m3), not at C's offset, or it would keep m3 where C has m2.
  await c.restartNode(b);
  await c.restartNode(a);
  // Every replica back in the ISR (then leadership returns to A, the preferred replica).
  const { leader } = await waitConverged(c, topic, P, 20_000);
  const m4 = await produceOk(c, h, leader, topic, 3, -1, 'm4');

  const values = await checkAll(c, h, topic);
  expect(values).toEqual([...valuesOf(m1), ...valuesOf(m2), ...valuesOf(m4)]);
  for (const v of valuesOf(m3)) expect(values).not.toContain(v);
  // m2 kept the offsets A gave it.
  expect(m2.map((op) => op.outcome)).toEqual(m2.map((_, i) => ({ kind: 'ok', baseOffset: endM2 - 3n + BigInt(i) })));
});

it('the last ISR member standing: replicas that missed acknowledged records never lead while it is down; it leads again when back, and nothing is lost', async () => {
  const c = (cluster = await startTestCluster(5, CONFIG));
  const controller = await c.waitForActiveController();
  const [a, b, cc] = others(c.ids, controller);
  const topic = 'last-standing';
  // min.insync.replicas=1: acks=all succeeds with the leader alone in the ISR.
  expect((await createTopic(c, controller, { name: topic, assignments: assignments([[a, b, cc]]), configs: { 'min.insync.replicas': '1' } })).errorCode).toBe('NONE');
  const h = newHistory();
  const m1 = await produceOk(c, h, a, topic, 5, -1, 'm1');
  await c.crashNode(b);
  await c.crashNode(cc);
  await c.waitFor(async () => (await leaderOf(c, controller, topic, P)).isr.join() === String(a) || undefined, SETTLE_MS, `the ISR to shrink to node ${a}`);
  const m2 = await produceOk(c, h, a, topic, 5, -1, 'm2');
  const { leaderEpoch } = await leaderOf(c, controller, topic, P);

  // The only replica with m2 fails: the partition has no leader until it returns.
  await c.crashNode(a);
  await c.restartNode(b);
  await c.restartNode(cc);
  await c.waitFor(async () => (await leaderOf(c, controller, topic, P)).leader === -1 || undefined, SETTLE_MS, 'the partition to be offline');
  // Long enough for an unclean election to have happened if it could.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const offline = await leaderOf(c, controller, topic, P);
  expect(offline).toMatchObject({ leader: -1, isr: [a] });
  for (const node of [b, cc]) {
    const { op } = await rawProduce(h, 'raw', c.raw(node), topic, P, [`refused-${h.freshValue('raw')}`], -1, 1_000);
    expect(op.outcome?.kind, `produce to node ${node} while offline: ${JSON.stringify(op.outcome)}`).not.toBe('ok');
  }

  await c.restartNode(a);
  const back = await waitLeader(c, controller, topic, (l, e) => l === a && e > leaderEpoch, `node ${a} to lead again`);
  const m3 = await produceOk(c, h, back.leader, topic, 3, -1, 'm3');
  const values = await checkAll(c, h, topic);
  expect(values).toEqual([...valuesOf(m1), ...valuesOf(m2), ...valuesOf(m3)]);
});

/** The partition directory's active segment file (the .log with the largest base offset). */
async function activeSegment(directory: string): Promise<string> {
  const logs = (await readdir(directory)).filter((name) => /^\d{20}\.log$/.test(name)).sort();
  const last = logs.at(-1);
  if (last === undefined) throw new Error(`no segment in ${directory}`);
  return join(directory, last);
}

it('a follower restarted with a torn tail (cut mid-batch, or garbage appended) recovers, re-fetches, rejoins the ISR, and its log is byte-identical', async () => {
  const c = (cluster = await startTestCluster(3, { ...CONFIG, 'log.segment.bytes': '16384' }));
  const controller = await c.waitForActiveController();
  const [leader, f1, f2] = [...others(c.ids, controller), controller];
  const topic = 'torn';
  expect((await createTopic(c, controller, { name: topic, assignments: assignments([[leader, f1, f2]]) })).errorCode).toBe('NONE');
  const h = newHistory();
  const tp = { topic, partition: P };
  const pad = 'x'.repeat(200);
  await produceOk(c, h, leader, topic, 40, -1, `before-${pad}`);

  const tear = async (follower: number, how: 'cut' | 'garbage') => {
    const directory = c.broker(follower).logManager.getLog(tp)?.directory;
    if (directory === undefined) throw new Error(`node ${follower} has no log`);
    const endBefore = logEnd(c, follower, topic);
    await c.stopNode(follower);
    const segment = await activeSegment(directory);
    const bytes = await readFile(segment);
    const batches = scanBatches(bytes, { verifyCrc: true });
    expect(batches.validBytes).toBe(bytes.length);
    const lastBatchBytes = batches.batches.at(-1)?.size ?? 0;
    const size = bytes.length;
    expect(lastBatchBytes).toBeGreaterThan(37);
    if (how === 'cut') {
      // Mid-batch: the last batch loses its last bytes; the clean-shutdown marker stays (it names the old size).
      await truncate(segment, size - 37);
    } else {
      // Garbage after the last batch, as after a crash (no clean-shutdown marker).
      await appendFile(segment, Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff)));
      await unlink(join(directory, '.kavka_cleanshutdown')).catch(() => undefined);
    }
    // The ISR goes on without it; records it must re-fetch.
    await c.waitFor(async () => !(await leaderOf(c, leader, topic, P)).isr.includes(follower) || undefined, SETTLE_MS, `node ${follower} to leave the ISR`);
    await produceOk(c, h, leader, topic, 20, -1, `while-${how}-${pad}`);
    await c.restartNode(follower);
    // Recovery found the torn tail and cut it (before the follower fetched anything).
    const reopened = await c.waitFor(() => c.broker(follower).logManager.getLog(tp), SETTLE_MS, `node ${follower} to open ${topic}`);
    const report = 'recovery' in reopened ? (reopened.recovery as { cleanShutdown: boolean; bytesTruncated: number }) : undefined;
    expect(report?.cleanShutdown).toBe(false);
    expect(report?.bytesTruncated).toBe(how === 'cut' ? lastBatchBytes - 37 : 300);
    await c.waitFor(async () => (await leaderOf(c, leader, topic, P)).isr.includes(follower) || undefined, SETTLE_MS, `node ${follower} to rejoin the ISR`);
    expect(logEnd(c, follower, topic)).toBeGreaterThan(endBefore);
  };
  await tear(f2, 'cut');
  await tear(f1, 'garbage');
  await produceOk(c, h, leader, topic, 10, -1, 'end');
  const values = await checkAll(c, h, topic);
  expect(values).toHaveLength(40 + 20 + 20 + 10);
});

it.each(['a broker', 'also the active controller'])('an isolated old leader (%s) accepts acks=1 writes in its stale epoch, never acks=all; after healing it truncates them and loses nothing acknowledged', async (role) => {
  const c = (cluster = await startTestCluster(3, CONFIG, { proxies: true }));
  const mesh = c.mesh!;
  const controller = await c.waitForActiveController();
  // As the controller, it must also lose that role (CheckQuorum) before the others can move on.
  const [old, ...followers] = role === 'a broker' ? [...others(c.ids, controller), controller] : [controller, ...others(c.ids, controller)];
  const topic = 'stale-leader';
  expect((await createTopic(c, controller, { name: topic, assignments: assignments([[old, ...followers]]) })).errorCode).toBe('NONE');
  const h = newHistory(false); // a long request overlaps others below
  const before = await produceOk(c, h, old, topic, 10, -1, 'before');
  const e1 = (await leaderOf(c, old, topic, P)).leaderEpoch;
  const committedEnd = logEnd(c, old, topic);

  // A paused leader, as its peers see it: every link to and from it is silent.
  mesh.isolate(old, 'blackhole');
  const staleOne = await produceOk(c, h, old, topic, 3, 1, 'stale-acks1');
  const staleAll = await rawProduce(h, 'raw', c.raw(old), topic, P, [`stale-all-${h.freshValue('raw')}`], -1, 1_000);
  expect(staleAll.op.outcome?.kind).not.toBe('ok');
  // One acks=all request that is still waiting when the link heals.
  const spanning = rawProduce(h, 'raw', c.raw(old), topic, P, [`stale-spanning-${h.freshValue('raw')}`], -1, 20_000);

  const next = await waitLeader(c, followers[0], topic, (l, e) => l !== old && e > e1, 'the others to elect a new leader');
  const during = await produceOk(c, h, next.leader, topic, 10, -1, 'during');
  // The old leader, still believing it leads, takes more acks=1 writes in its stale epoch, and
  // never shows any of them to consumers (its HW stays where the ISR left it).
  const staleLater = await produceOk(c, h, old, topic, 3, 1, 'stale-later');
  expect(await highWatermarkAt(c, old, topic)).toBe(committedEnd);
  expect((await leaderOf(c, old, topic, P)).leaderEpoch).toBe(e1);

  mesh.heal();
  const spanned = await spanning;
  expect(spanned.op.outcome?.kind, `the acks=all request held over the heal: ${JSON.stringify(spanned.op.outcome)}`).not.toBe('ok');
  // Once the old leader is back in the ISR, leadership returns to it (the preferred replica).
  const settled = await waitConverged(c, topic, P, 20_000);
  const after = await produceOk(c, h, settled.leader, topic, 5, -1, 'after');

  const values = await checkAll(c, h, topic);
  expect(values).toEqual([...valuesOf(before), ...valuesOf(during), ...valuesOf(after)]);
  for (const v of [...valuesOf(staleOne), ...valuesOf(staleLater), ...staleAll.op.values, ...spanned.op.values]) expect(values).not.toContain(v);
  // The old leader's own log, read to its end, holds none of them either.
  const oldView = await ownLogValues(c, old, topic);
  expect(oldView).toEqual(values);
});

/** Every record of node `node`'s own log, to its log end (not only below the HW), as values. */
async function ownLogValues(c: TestCluster, node: number, topic: string): Promise<string[]> {
  const log = c.broker(node).logManager.getLog({ topic, partition: P });
  if (log === undefined) throw new Error(`node ${node} has no log`);
  const out: string[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const read = await log.read(offset, 1 << 20, { maxOffset: log.logEndOffset, minOneBatch: true });
    if (read.batches.length === 0) break;
    for (const { position, size } of scanBatches(read.batches, { verifyCrc: true }).batches) {
      for (const r of decodeRecordBatch(read.batches.subarray(position, position + size)).records) if (r.offset >= offset) out.push(r.value?.toString() ?? '<null>');
    }
    offset = read.nextOffset;
  }
  return out;
}
