// Replication under faults: seeded, bounded runs of a produce workload against in-process brokers
// (real gRPC, real storage, every inter-node link through a fault proxy) while a schedule drawn
// from the seed crashes and restarts nodes, stops them (controlled shutdown), cuts links (both
// directions of a node, one direction of one link), slows a node's links, and takes two of three
// replicas down at once.
// After the schedule everything is healed and restarted; once every partition has its full ISR
// back and nothing is in flight, the history checker reads every partition from its leader,
// compares the replicas' logs byte for byte below the high watermark, and checks the properties
// of test/helpers/history.ts against everything produced and read during the run.
//
// The workload: two TypeScript-client producers (idempotent, acks=all, many retries) and one raw
// gRPC producer (one request per value, never retried, so each outcome is exact), each sending 1-3
// records per request to a partition drawn from its own generator, with a short pause between;
// and a reader that fetches from the leaders as a consumer would. While a fault lasts, probes go
// straight to the nodes it cut off (the isolated node; the one survivor of two replicas down):
// acks=1 may be taken there, acks=all must not succeed (the checker's unavailable windows). After
// the faults every producer must get a write acknowledged again.
//
// A seed fixes the schedule (faults, targets, pauses, durations) and each producer's choices;
// timing is real, so a failing seed replays the same schedule, not the same interleaving. A
// failure prints the seed, the schedule and the event log. More seeds:
//   KAVKA_FAULT_SEEDS=11,12,13 npx vitest run test/cluster/replication-faults.test.ts
// (KAVKA_FAULT_STEPS=8 for longer schedules, KAVKA_FAULT_VERBOSE=1 to print every run's report).
import { afterEach, expect, it } from 'vitest';
import { Kavka, type Producer } from '../../src/client/index.js';
import type { CutMode } from '../../src/harness/fault-proxy.js';
import { Prng } from '../raft/prng.js';
import { createTopic, startTestCluster, type TestCluster } from '../helpers/cluster.js';
import {
  checkHistory,
  formatViolations,
  History,
  leaderOf,
  observeFetch,
  rawProduce,
  readBack,
  recordedSend,
  type ProduceOp,
  type Violation,
} from '../helpers/history.js';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

const CONFIG = {
  'replica.lag.time.max.ms': '1500',
  'replica.fetch.wait.max.ms': '100',
  'replica.fetch.backoff.ms': '50',
  'min.insync.replicas': '2',
  'log.segment.bytes': '16384',
};

// ------------------------------------------------------------------ the schedule

/** A node to act on: a fixed one, or whoever leads a partition when the step runs. */
type Target = { node: number } | { leaderOf: { topic: string; partition: number } };

type Fault =
  | { kind: 'crash'; target: Target; holdMs: number }
  | { kind: 'stop'; target: Target; holdMs: number }
  | { kind: 'isolate'; target: Target; mode: CutMode; holdMs: number }
  | { kind: 'cut'; from: Target; to: Target; bothWays: boolean; mode: CutMode; holdMs: number }
  | { kind: 'slow'; target: Target; delayMs: number; holdMs: number }
  | { kind: 'down-together'; nodes: number[]; holdMs: number };

interface Step {
  pauseMs: number;
  fault: Fault;
}

interface TopicSpec {
  name: string;
  replicas: number[][];
  minInsync: number;
}

interface RunSpec {
  seed: number;
  nodes: number;
  topics: TopicSpec[];
  steps: Step[];
  /** Records each producer sends at most. */
  recordsPerProducer: number;
}

const between = (random: Prng, low: number, high: number) => low + random.int(high - low + 1);

function targetOf(random: Prng, spec: Omit<RunSpec, 'steps'>): Target {
  if (random.chance(0.5)) return { node: 1 + random.int(spec.nodes) };
  const topic = random.pick(spec.topics);
  return { leaderOf: { topic: topic.name, partition: random.int(topic.replicas.length) } };
}

/** The schedule of a seed: `count` single faults and, at a random place, nodes down together. */
function schedule(random: Prng, spec: Omit<RunSpec, 'steps'>, count: number, together: number): Step[] {
  const steps: Step[] = [];
  for (let i = 0; i < count; i++) {
    const kind = random.pick(['crash', 'crash', 'stop', 'isolate', 'isolate', 'cut', 'cut', 'slow'] as const);
    const mode: CutMode = random.chance(0.75) ? 'blackhole' : 'reset';
    let fault: Fault;
    if (kind === 'crash' || kind === 'stop') fault = { kind, target: targetOf(random, spec), holdMs: between(random, 200, 1200) };
    else if (kind === 'isolate') fault = { kind, target: targetOf(random, spec), mode, holdMs: between(random, 600, 2500) };
    else if (kind === 'slow') fault = { kind, target: targetOf(random, spec), delayMs: between(random, 20, 400), holdMs: between(random, 1000, 3000) };
    else fault = { kind, from: targetOf(random, spec), to: targetOf(random, spec), bothWays: random.chance(0.4), mode, holdMs: between(random, 500, 2500) };
    steps.push({ pauseMs: between(random, 200, 800), fault });
  }
  const nodes: number[] = [];
  while (nodes.length < together) {
    const node = 1 + random.int(spec.nodes);
    if (!nodes.includes(node)) nodes.push(node);
  }
  steps.splice(random.int(steps.length + 1), 0, { pauseMs: between(random, 200, 800), fault: { kind: 'down-together', nodes, holdMs: between(random, 800, 1500) } });
  return steps;
}

function describeStep(step: Step): string {
  const t = (target: Target) => ('node' in target ? `node ${target.node}` : `leader of ${target.leaderOf.topic}-${target.leaderOf.partition}`);
  const f = step.fault;
  const what =
    f.kind === 'down-together'
      ? `crash nodes ${f.nodes.join(',')} together`
      : f.kind === 'cut'
        ? `cut ${t(f.from)} ${f.bothWays ? '<->' : '->'} ${t(f.to)} (${f.mode})`
        : f.kind === 'isolate'
          ? `isolate ${t(f.target)} (${f.mode})`
          : f.kind === 'slow'
            ? `delay every link of ${t(f.target)} by ${f.delayMs} ms`
            : `${f.kind} ${t(f.target)}`;
  return `after ${step.pauseMs} ms: ${what} for ${f.holdMs} ms`;
}

// ------------------------------------------------------------------ one run

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface RunResult {
  violations: Violation[];
  events: string[];
  history: History;
  notes: string[];
}

async function run(spec: RunSpec): Promise<RunResult> {
  const c = (cluster = await startTestCluster(spec.nodes, CONFIG, { proxies: true }));
  const mesh = c.mesh!;
  const history = new History();
  const events: string[] = [];
  const notes: string[] = [];
  const startedMs = Date.now();
  const event = (text: string) => events.push(`t=${history.now()} +${Date.now() - startedMs} ms: ${text}`);
  const random = new Prng(spec.seed);
  const controller = await c.waitForActiveController();
  for (const topic of spec.topics) {
    const created = await createTopic(c, controller, {
      name: topic.name,
      assignments: topic.replicas.map((brokerIds, partition) => ({ partition, brokerIds })),
      configs: { 'min.insync.replicas': String(topic.minInsync) },
    });
    expect(created.errorCode).toBe('NONE');
  }
  const partitions = spec.topics.flatMap((topic) => topic.replicas.map((replicas, partition) => ({ topic: topic.name, partition, replicas, minInsync: topic.minInsync })));

  // --- the workload, paced to spread each producer's records over the schedule
  const restarts = spec.steps.reduce((n, step) => n + (step.fault.kind === 'down-together' ? step.fault.nodes.length : step.fault.kind === 'crash' || step.fault.kind === 'stop' ? 1 : 0), 0);
  const plannedMs = spec.steps.reduce((ms, step) => ms + step.pauseMs + step.fault.holdMs, 0) + restarts * 1_500;
  // Sends stall while a fault lasts, so aim to use the quota in about half the planned time.
  const paceMs = Math.max(10, Math.round(plannedMs / 2 / (spec.recordsPerProducer / 2)));
  let stopping = false;
  const healedAt = { t: Number.POSITIVE_INFINITY };
  const okAfterHeal = (name: string) => history.ops.some((op) => op.producer === name && op.invokedAt > healedAt.t && op.outcome?.kind === 'ok');
  /**
   * Whether a producer sends another request: until its quota is used; past the quota it waits
   * for the faults to heal and then sends until one write is acknowledged (the liveness check).
   */
  const wantsMore = async (name: string, sent: number): Promise<boolean> => {
    for (;;) {
      if (stopping) return false;
      if (sent < spec.recordsPerProducer) return true;
      if (healedAt.t !== Number.POSITIVE_INFINITY) return !okAfterHeal(name);
      await sleep(50);
    }
  };
  const epochBumps = new Map<string, string[]>();
  const tsProducer = (name: string): Producer => {
    history.addProducer(name, { noDuplicates: true, ordered: true });
    const client = new Kavka({
      clientId: name,
      brokers: c.ids.map((id) => c.clientAddress(id)),
      retry: { retries: 60, initialRetryTimeMs: 50, maxRetryTimeMs: 300 },
      requestTimeoutMs: 3_000,
      logger: {
        debug: () => undefined,
        info: (bindings, message) => {
          if (/bump its epoch/.test(message)) epochBumps.set(name, [...(epochBumps.get(name) ?? []), `t=${history.now()} ${String(bindings.reason)}`]);
        },
        warn: () => undefined,
        error: () => undefined,
      },
    });
    return client.producer({ acks: -1, lingerMs: 0, timeoutMs: 2_000 });
  };
  const loops: Promise<void>[] = [];
  for (const name of ['ts-a', 'ts-b']) {
    const producer = tsProducer(name);
    const choices = random.fork();
    loops.push(
      (async () => {
        let sent = 0;
        while (await wantsMore(name, sent)) {
          const p = choices.pick(partitions);
          const values = Array.from({ length: 1 + choices.int(3) }, () => history.freshValue(name));
          sent += values.length;
          await recordedSend(history, name, producer, p.topic, p.partition, values, -1);
          await sleep(Math.round(paceMs * (0.5 + choices.next())));
        }
        await producer.disconnect();
      })(),
    );
  }
  history.addProducer('raw', { noDuplicates: true, ordered: true });
  const rawChoices = random.fork();
  loops.push(
    (async () => {
      const leaders = new Map<string, number>();
      let sent = 0;
      while (await wantsMore('raw', sent)) {
        const p = rawChoices.pick(partitions);
        const key = `${p.topic}-${p.partition}`;
        const values = Array.from({ length: 1 + rawChoices.int(3) }, () => history.freshValue('raw'));
        sent += values.length;
        let leader = leaders.get(key);
        if (leader === undefined || !c.runningIds().includes(leader)) {
          const running = c.runningIds();
          const via = running[rawChoices.int(running.length)];
          leader = await leaderOf(c, via, p.topic, p.partition).then(
            (view) => (view.leader >= 0 ? view.leader : via),
            () => via,
          );
        }
        const result = await rawProduce(history, 'raw', c.raw(leader), p.topic, p.partition, values, -1, 2_000, leader);
        if (result.op.outcome?.kind === 'ok') leaders.set(key, leader);
        else if (result.leaderHint !== undefined && result.leaderHint >= 0) leaders.set(key, result.leaderHint);
        else leaders.delete(key);
        await sleep(Math.round(paceMs * (0.5 + rawChoices.next())));
      }
    })(),
  );

  // A reader: Fetch from the leaders as a consumer would, every record seen goes into the history.
  const readerChoices = random.fork();
  loops.push(
    (async () => {
      const next = new Map<string, bigint>();
      const leaders = new Map<string, number>();
      while (!stopping) {
        const p = readerChoices.pick(partitions);
        const key = `${p.topic}-${p.partition}`;
        let leader = leaders.get(key);
        const running = c.runningIds();
        if (leader === undefined || !running.includes(leader)) {
          const view = await leaderOf(c, running[readerChoices.int(running.length)], p.topic, p.partition).catch(() => undefined);
          leader = view !== undefined && view.leader >= 0 ? view.leader : undefined;
        }
        const read = leader === undefined ? undefined : await observeFetch(c, history, leader, p.topic, p.partition, next.get(key) ?? 0n);
        if (read === undefined || leader === undefined) leaders.delete(key);
        else {
          leaders.set(key, leader);
          next.set(key, read);
        }
        await sleep(30 + readerChoices.int(40));
      }
    })(),
  );

  // Probes: requests sent straight to a node a fault left unable to get acks=all through.
  history.addProducer('probe', { noDuplicates: true, ordered: false });
  const probe = async (nodes: number[], affected: typeof partitions, timeoutMs: number, reason: string): Promise<() => void> => {
    const closers = affected.flatMap((p) => nodes.map((node) => history.unavailable(p.topic, p.partition, reason, node)));
    const sent = affected.flatMap((p) =>
      nodes.flatMap((node) =>
        ([-1, 1] as const).map((acks) => rawProduce(history, 'probe', c.raw(node), p.topic, p.partition, [history.freshValue(`probe-acks${acks}`)], acks, timeoutMs, node)),
      ),
    );
    await Promise.all(sent);
    return () => closers.forEach((close) => close());
  };

  // --- the faults
  const resolve = async (target: Target): Promise<number> => {
    if ('node' in target) return target.node;
    const running = c.runningIds();
    const view = await leaderOf(c, running[0], target.leaderOf.topic, target.leaderOf.partition).catch(() => undefined);
    return view !== undefined && view.leader >= 0 ? view.leader : (spec.topics.find((t) => t.name === target.leaderOf.topic)?.replicas[target.leaderOf.partition][0] ?? 1);
  };
  for (const step of spec.steps) {
    await sleep(step.pauseMs);
    const f = step.fault;
    if (f.kind === 'crash' || f.kind === 'stop') {
      const node = await resolve(f.target);
      event(`${f.kind} node ${node}`);
      await (f.kind === 'crash' ? c.crashNode(node) : c.stopNode(node));
      await sleep(f.holdMs);
      event(`restart node ${node}`);
      await c.restartNode(node);
      event(`node ${node} ready`);
    } else if (f.kind === 'isolate') {
      const node = await resolve(f.target);
      event(`isolate node ${node} (${f.mode})`);
      mesh.isolate(node, f.mode);
      // Whatever the isolated node still believes it leads, acks=all through it cannot succeed.
      const probeMs = Math.max(100, f.holdMs - 400);
      const started = Date.now();
      const close = await probe([node], partitions.filter((p) => p.replicas.includes(node)), probeMs, `node ${node} isolated`);
      await sleep(Math.max(0, f.holdMs - (Date.now() - started)));
      close();
      mesh.heal();
      event('healed');
    } else if (f.kind === 'slow') {
      const node = await resolve(f.target);
      const links = c.ids.filter((id) => id !== node).flatMap((id) => [mesh.link(node, id), mesh.link(id, node)]);
      event(`delay the links of node ${node} by ${f.delayMs} ms`);
      for (const link of links) link.setDelay(f.delayMs);
      await sleep(f.holdMs);
      for (const link of links) link.setDelay(0);
      event('delay removed');
    } else if (f.kind === 'cut') {
      const from = await resolve(f.from);
      let to = await resolve(f.to);
      if (to === from) to = (from % spec.nodes) + 1;
      event(`cut ${from} ${f.bothWays ? '<->' : '->'} ${to} (${f.mode})`);
      mesh.cutLink(from, to, f.mode);
      if (f.bothWays) mesh.cutLink(to, from, f.mode);
      await sleep(f.holdMs);
      mesh.heal();
      event('healed');
    } else {
      event(`crash nodes ${f.nodes.join(',')} together`);
      await Promise.all(f.nodes.map((node) => c.crashNode(node)));
      // Partitions left with fewer live replicas than min.insync.replicas can acknowledge nothing
      // with acks=all until a replica returns.
      const below = partitions.filter((p) => p.replicas.filter((id) => !f.nodes.includes(id)).length < p.minInsync);
      const closers = below.map((p) => history.unavailable(p.topic, p.partition, `nodes ${f.nodes.join(',')} down, ${p.replicas.filter((id) => !f.nodes.includes(id)).length} of replicas ${p.replicas.join(',')} alive, min.insync.replicas=${p.minInsync}`));
      event(`nodes ${f.nodes.join(',')} down; ${closers.length} partition(s) below min.insync.replicas`);
      const started = Date.now();
      const closeProbes = await probe(c.runningIds(), below, Math.max(100, f.holdMs - 400), `nodes ${f.nodes.join(',')} down`);
      await sleep(Math.max(0, f.holdMs - (Date.now() - started)));
      closeProbes();
      for (const close of closers) close();
      for (const node of f.nodes) {
        event(`restart node ${node}`);
        await c.restartNode(node);
      }
      event(`nodes ${f.nodes.join(',')} ready`);
    }
  }
  mesh.heal();
  healedAt.t = history.now();
  event('schedule done; everything healed and running');
  // A healthy stretch: every producer must get acks=all writes through again.
  await c.waitFor(
    () => ['ts-a', 'ts-b', 'raw'].every(okAfterHeal),
    20_000,
    'every producer to get an acknowledged write after the faults healed',
  ).catch((error: unknown) => notes.push(String(error)));
  stopping = true;
  await Promise.race([Promise.all(loops), sleep(40_000).then(() => notes.push('the workload did not stop within 40 s'))]);
  event('workload stopped');

  for (const [name, bumps] of epochBumps) {
    // Across an epoch bump Kafka's idempotent producer may duplicate a batch (README).
    notes.push(`${name} bumped its producer epoch ${bumps.length} time(s) (${bumps.join('; ')}); duplicates of its values are allowed`);
    history.producers.set(name, { ...history.producer(name), noDuplicates: false });
  }
  const violations: Violation[] = [];
  for (const topic of spec.topics) violations.push(...(await readBack(c, history, topic.name, topic.replicas.length, 30_000)));
  violations.push(...checkHistory(history));
  return { violations, events, history, notes };
}

/** How often each producer saw each error code (the text up to the first colon). */
function errorCounts(history: History): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const op of history.ops) {
    if (op.outcome === undefined || op.outcome.kind === 'ok') continue;
    const key = `${op.producer} ${op.outcome.kind} ${op.outcome.error.split(':')[0]}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Operations invoked and completed inside an unavailable window of their partition, by outcome. */
function insideWindows(history: History): string {
  const counts: Record<string, number> = {};
  for (const op of history.ops) {
    const inside = history.windows.some((w) => w.topic === op.topic && w.partition === op.partition && op.invokedAt > w.from && (op.completedAt ?? Number.POSITIVE_INFINITY) < w.to);
    const key = `${op.outcome?.kind ?? 'pending'} acks=${op.acks}`;
    if (inside) counts[key] = (counts[key] ?? 0) + 1;
  }
  return JSON.stringify(counts);
}

function report(spec: RunSpec, result: RunResult): string {
  const s = result.history.summary();
  const acked = result.history.ops.filter((op: ProduceOp) => op.outcome?.kind === 'ok').reduce((n, op) => n + op.values.length, 0);
  return [
    `seed=${spec.seed} nodes=${spec.nodes} (replay: KAVKA_FAULT_SEEDS=${spec.seed} npx vitest run test/cluster/replication-faults.test.ts)`,
    `schedule:\n${spec.steps.map((step) => `  ${describeStep(step)}`).join('\n')}`,
    `events:\n${result.events.map((e) => `  ${e}`).join('\n')}`,
    `ops: ${s.ops} (${s.records} records): ok ${s.ok} (${acked} records), failed ${s.failed}, unknown ${s.unknown}, pending ${s.pending}`,
    `failed and unknown, by producer and error: ${JSON.stringify(errorCounts(result.history))}`,
    `produce requests that lived inside an unavailable window: ${insideWindows(result.history)}`,
    `reads: ${result.history.observations.length} observations, ${result.history.observations.reduce((n, o) => n + o.records.length, 0)} records`,
    ...result.notes.map((n) => `note: ${n}`),
    `violations (${result.violations.length}):\n${formatViolations(result.violations)}`,
  ].join('\n');
}

// ------------------------------------------------------------------ the runs

/** Single faults per run (besides the two nodes down together); KAVKA_FAULT_STEPS for longer runs. */
const STEPS = Number(process.env.KAVKA_FAULT_STEPS ?? 3);
const TIMEOUT_MS = 60_000 + Math.max(0, STEPS - 3) * 10_000;

function threeNodeSpec(seed: number): RunSpec {
  const base = {
    seed,
    nodes: 3,
    topics: [{ name: 'faults', replicas: [[1, 2, 3], [2, 3, 1], [3, 1, 2]], minInsync: 2 }],
    recordsPerProducer: 300,
  };
  return { ...base, steps: schedule(new Prng(seed ^ 0x5eed), base, STEPS, 2) };
}

function fiveNodeSpec(seed: number): RunSpec {
  const base = {
    seed,
    nodes: 5,
    topics: [
      { name: 'rf3', replicas: [[1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 1], [5, 1, 2]], minInsync: 2 },
      { name: 'rf5', replicas: [[3, 4, 5, 1, 2]], minInsync: 3 },
    ],
    recordsPerProducer: 300,
  };
  return { ...base, steps: schedule(new Prng(seed ^ 0x5eed), base, STEPS, 2) };
}

const seeds = (process.env.KAVKA_FAULT_SEEDS ?? '').split(',').filter((s) => s.trim() !== '').map(Number);
const threeNodeSeeds = seeds.length > 0 ? seeds : [1, 2];
const fiveNodeSeeds = seeds.length > 0 ? seeds : [3];

for (const seed of threeNodeSeeds) {
  it(`3 nodes, RF 3, min.insync.replicas 2, seed ${seed}: no acknowledged record lost, no offset with two records, replicas identical`, async () => {
    const spec = threeNodeSpec(seed);
    const result = await run(spec);
    const text = report(spec, result);
    if (process.env.KAVKA_FAULT_VERBOSE !== undefined) console.log(text);
    expect(result.violations, text).toEqual([]);
    expect(result.history.ops.filter((op) => op.outcome?.kind === 'ok').length, text).toBeGreaterThan(20);
    expect(result.notes.filter((n) => !n.includes('bumped')), text).toEqual([]);
  }, TIMEOUT_MS);
}

for (const seed of fiveNodeSeeds) {
  it(`5 nodes, RF 3 and RF 5, seed ${seed}: no acknowledged record lost, no offset with two records, replicas identical`, async () => {
    const spec = fiveNodeSpec(seed);
    const result = await run(spec);
    const text = report(spec, result);
    if (process.env.KAVKA_FAULT_VERBOSE !== undefined) console.log(text);
    expect(result.violations, text).toEqual([]);
    expect(result.history.ops.filter((op) => op.outcome?.kind === 'ok').length, text).toBeGreaterThan(20);
    expect(result.notes.filter((n) => !n.includes('bumped')), text).toEqual([]);
  }, TIMEOUT_MS);
}
