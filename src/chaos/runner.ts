// Runs one chaos scenario against a target: a topic of its own, the workload, the scenario's
// fault schedule, then heal, converge, read back and check. Returns one row of the final table
// and writes the history and the report to the run's directory.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Kavka, type ITopicConfig } from '../client/index.js';
import { Prng } from '../util/prng.js';
import { checkHistory, formatViolations, History, historyToJson, type Violation } from './history.js';
import { compareReplicaFiles, readFinal, ReadbackClients, replicaPositions, waitConverged } from './readback.js';
import { capabilityOf, describeStep, type Profile, type Role, type Scenario, type Step } from './scenarios.js';
import { flipBit, tornTail, wipe } from './disk-faults.js';
import type { ChaosTarget, NodeEvent } from './target.js';
import { EXIT_METADATA_LOG_FAILED } from '../cli/exit-codes.js';
import { Workload } from './workload.js';

export interface RunOptions {
  scenario: Scenario;
  profile: Profile;
  seed: number;
  target: ChaosTarget;
  /** Where history.json and report.json go. */
  reportDir: string;
  /** Progress lines (one per step). */
  log: (line: string) => void;
  partitions?: number;
}

export interface ScenarioResult {
  scenario: string;
  seed: number;
  target: string;
  faults: number;
  skipped: string[];
  ok: number;
  failed: number;
  unknown: number;
  consumed: number;
  violations: Violation[];
  /** From the last heal to every partition converged (one leader, full ISR, replicas caught up). */
  recoverMs: number;
  elapsedMs: number;
  reportDir: string;
  /** Set when the run itself broke (the cluster never converged, a step threw). */
  error?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A step that found nothing to act on (no leader right now, no sealed segment yet). */
class StepSkipped extends Error {}

export function workloadSize(profile: Profile): { recordsPerProducer: number; inFlight: number; pauseMs: number } {
  return profile === 'short' ? { recordsPerProducer: 3_000, inFlight: 4, pauseMs: 12 } : { recordsPerProducer: 200_000, inFlight: 6, pauseMs: 6 };
}

export async function runScenario(options: RunOptions): Promise<ScenarioResult> {
  const { scenario, profile, seed, target, log } = options;
  const started = Date.now();
  const partitions = options.partitions ?? 3;
  const random = new Prng(seed);
  const steps = scenario.plan(random.fork(), profile, partitions);
  // Unique per run: a compose cluster outlives runs, and a re-run with the same seed must not
  // find the records of the last one.
  const topic = `chaos-${scenario.name}-${seed}-${Date.now().toString(36)}`;
  const history = new History();
  const clients = new ReadbackClients(target);
  const skipped: string[] = [];
  await mkdir(options.reportDir, { recursive: true });
  log(`${scenario.name} (seed ${seed}, ${target.kind}): ${steps.filter((s) => s.kind !== 'quiet').map(describeStep).join('; ')}`);

  await createTopic(target, { topic, numPartitions: partitions, replicationFactor: 3, configEntries: [{ name: 'min.insync.replicas', value: '2' }] }, 30, 30_000);

  const workload = new Workload({
    bootstrap: target.bootstrap(),
    topic,
    partitions,
    producers: [
      { name: 'idem1', kind: 'idempotent' },
      { name: 'idem2', kind: 'idempotent' },
      { name: 'acks1', kind: 'acks1' },
    ],
    consumers: 2,
    ...workloadSize(profile),
    random: random.fork(),
    history,
  });
  let faults = 0;
  let lastHealAt = Date.now();
  let error: string | undefined;
  const stepRandom = random.fork();
  /** Nodes a pause step stopped and has not resumed yet (a step that threw midway). */
  const pausedNodes = new Set<number>();
  // Nodes that exit by themselves, and the supervisor's restarts, go into the history too.
  const unwatch = target.watch?.((event) => {
    history.fault(event.what, [event.node]);
    log(`  ${scenario.name}: ${event.what}`);
  });
  const context: StepContext = { target, clients, history, topic, random: stepRandom, pausedNodes, metadataWrites: 0 };
  try {
    await workload.start();
    await sleep(500);
    for (const step of steps) {
      const capability = capabilityOf(step);
      if (capability !== undefined && capability !== 'signals' && capability !== 'links' && !(target.capabilities?.has(capability) ?? false)) {
        skipped.push(`${describeStep(step)} (${target.kind} target cannot: ${capability})`);
        continue;
      }
      if (step.kind === 'quiet') {
        await sleep(step.ms);
        continue;
      }
      try {
        const did = await runStep(context, step);
        faults++;
        log(`  ${scenario.name}: ${did}`);
      } catch (e) {
        if (!(e instanceof StepSkipped)) throw e;
        skipped.push(e.message);
        log(`  ${scenario.name}: skipped: ${e.message}`);
      }
      lastHealAt = Date.now();
    }
    await healAll(target, pausedNodes);
    lastHealAt = Date.now();
    // Let producers see the healed cluster for a moment, then stop them.
    await sleep(1_000);
    await workload.stopProducers(60_000);
  } catch (e) {
    error = `step failed: ${(e as Error).message}`;
    await healAll(target, pausedNodes).catch(() => undefined);
    await workload.stopProducers(30_000);
  }

  const violations: Violation[] = [];
  let recoverMs = -1;
  try {
    const ends = new Map<number, bigint>();
    for (let p = 0; p < partitions; p++) {
      const view = await waitConverged(target, clients, topic, p, 90_000);
      const final = await readFinal(clients, history, view.leader, topic, p);
      ends.set(p, final.to);
      if (target.replicaBytes !== undefined) {
        const positions = await Promise.all(view.replicas.map(async (id) => (await replicaPositions(target, id, topic)).get(p)));
        violations.push(...(await compareReplicaFiles(target as ChaosTarget & { replicaBytes: NonNullable<ChaosTarget['replicaBytes']> }, history, topic, p, positions.filter((x) => x !== undefined))));
      }
    }
    recoverMs = Date.now() - lastHealAt;
    const behind = await workload.drainConsumers(ends, 30_000);
    if (behind.length > 0) log(`  ${scenario.name}: consumers behind after 30 s: ${behind.join('; ')}`);
  } catch (e) {
    error ??= `read-back failed: ${(e as Error).message}`;
  } finally {
    unwatch?.();
    await workload.close();
    clients.close();
  }
  violations.push(...checkHistory(history));
  const summary = history.summary();
  const consumed = [...history.consumptions.values()].reduce((n, c) => n + c.records.length, 0);
  const result: ScenarioResult = {
    scenario: scenario.name,
    seed,
    target: target.kind,
    faults,
    skipped,
    ok: summary.ok,
    failed: summary.failed,
    unknown: summary.unknown + summary.pending,
    consumed,
    violations,
    recoverMs,
    elapsedMs: Date.now() - started,
    reportDir: options.reportDir,
    ...(error === undefined ? {} : { error }),
  };
  await writeFile(join(options.reportDir, 'history.json'), JSON.stringify(historyToJson(history)));
  await target.collectLogs?.(options.reportDir).catch((e: unknown) => log(`  ${scenario.name}: could not collect node logs: ${(e as Error).message}`));
  const linked = await Promise.all(violations.map((v) => linkToLogs(target, history, v)));
  await writeFile(join(options.reportDir, 'report.json'), JSON.stringify({ ...result, steps: steps.map(describeStep), faultsInjected: history.faults, violations: violations.map((v, i) => ({ ...v, offset: v.offset?.toString(), logs: linked[i] })) }, null, 2));
  if (violations.length > 0) log(`  ${scenario.name}: ${violations.length} violation(s):\n${formatViolations(violations)}\n${linked.slice(0, 5).map((l) => l.map((x) => `    ${x.file}:${x.fromLine}-${x.toLine}`).join('\n')).join('\n')}`);
  return result;
}

/** The node a role names now; undefined when none can be found (e.g. no leader at the moment). */
async function resolveRole(target: ChaosTarget, clients: ReadbackClients, topic: string, role: Role, partition: number, random: Prng): Promise<number | undefined> {
  const running: number[] = [];
  for (const id of target.nodeIds) if (await target.isRunning(id)) running.push(id);
  if (role === 'random') return running.length === 0 ? undefined : random.pick(running);
  for (const via of running) {
    if (role === 'controller') {
      const id = await clients.controller(via).catch(() => -1);
      if (id > 0) return id;
      continue;
    }
    const view = await clients.view(via, topic, partition).catch(() => undefined);
    if (view === undefined || view.leader < 0) continue;
    if (role === 'leader') return view.leader;
    const followers = view.replicas.filter((id) => id !== view.leader && running.includes(id));
    return followers.length === 0 ? undefined : random.pick(followers);
  }
  return undefined;
}

interface StepContext {
  target: ChaosTarget;
  clients: ReadbackClients;
  history: History;
  topic: string;
  random: Prng;
  /** Nodes a pause step stopped and has not resumed yet (a step that threw midway). */
  pausedNodes: Set<number>;
  /** Topics created so far to make the cluster write its metadata log. */
  metadataWrites: number;
}

/** Runs one fault step to its end (the node restarted, the link healed); returns what it did. */
async function runStep(context: StepContext, step: Exclude<Step, { kind: 'quiet' }>): Promise<string> {
  const { target, clients, history, topic, random, pausedNodes } = context;
  if (step.kind === 'rolling-restart') {
    const done: number[] = [];
    for (const id of target.nodeIds) {
      history.fault(`SIGTERM node ${id} (rolling restart)`, [id]);
      await target.fault(id, 'stop');
      await target.start(id);
      await waitUnderReplicatedZero(target, 60_000);
      history.fault(`node ${id} back, under-replicated = 0`, [id]);
      done.push(id);
    }
    return `rolling restart of nodes ${done.join(', ')}`;
  }
  if (step.kind === 'cut-link') {
    const leader = await resolveRole(target, clients, topic, 'leader', step.partition, random);
    const follower = await resolveRole(target, clients, topic, 'follower', step.partition, random);
    if (leader === undefined || follower === undefined || target.cutLink === undefined) throw new StepSkipped(`cut-link: no leader and follower of p${step.partition} to cut between`);
    const [from, to] = random.chance(0.5) ? [leader, follower] : [follower, leader];
    const event = history.fault(`cut link ${from}->${to}`, [from, to]);
    await target.cutLink(from, to);
    await sleep(step.ms);
    await target.heal();
    history.fault(`healed link ${from}->${to}`, [from, to]);
    return `cut link ${from}->${to} for ${Date.now() - event.wallMs} ms`;
  }
  const node = await resolveRole(target, clients, topic, step.role, step.partition, random);
  if (node === undefined) throw new StepSkipped(`${describeStep(step)}: no such node right now`);
  switch (step.kind) {
    case 'kill':
    case 'stop': {
      history.fault(`${step.kind === 'kill' ? 'SIGKILL' : 'SIGTERM'} node ${node} (${step.role})`, [node]);
      await target.fault(node, step.kind);
      await sleep(step.downMs);
      await target.start(node);
      history.fault(`restarted node ${node}`, [node]);
      return `${step.kind === 'kill' ? 'SIGKILL' : 'SIGTERM'} node ${node} (${step.role}), restarted after ${step.downMs} ms`;
    }
    case 'pause': {
      history.fault(`SIGSTOP node ${node} (${step.role})`, [node]);
      pausedNodes.add(node);
      await target.fault(node, 'pause');
      await sleep(step.pausedMs * (target.timeScale ?? 1));
      await target.fault(node, 'resume');
      pausedNodes.delete(node);
      history.fault(`SIGCONT node ${node}`, [node]);
      return `SIGSTOP node ${node} (${step.role}) for ${step.pausedMs * (target.timeScale ?? 1)} ms`;
    }
    case 'isolate': {
      history.fault(`isolate node ${node} (${step.role})`, [node]);
      await target.isolate(node);
      await sleep(step.ms * (target.timeScale ?? 1));
      await target.heal();
      history.fault(`healed node ${node}`, [node]);
      return `isolated node ${node} (${step.role}) for ${step.ms * (target.timeScale ?? 1)} ms`;
    }
    case 'delay': {
      if (target.delay === undefined) throw new StepSkipped('delay: the target cannot delay links');
      history.fault(`delay node ${node} by ${step.delayMs} ms`, [node]);
      await target.delay(node, step.delayMs);
      await sleep(step.ms);
      await target.heal();
      history.fault(`removed delay on node ${node}`, [node]);
      return `delayed node ${node}'s links by ${step.delayMs} ms for ${step.ms} ms`;
    }
    case 'disk-full': {
      if (target.capabilities?.has('small-disks') === true && target.fillDisk !== undefined && target.freeDisk !== undefined) {
        history.fault(`filling node ${node}'s log dir file system`, [node]);
        const bytes = await target.fillDisk(node);
        history.fault(`node ${node}'s log dir file system is full (ballast ${bytes} bytes)`, [node]);
        await sleep(step.ms);
        await target.freeDisk(node);
        history.fault(`deleted the ballast on node ${node}: space is back`, [node]);
        return `filled node ${node}'s log dir tmpfs (${step.role}) with ${Math.round(bytes / 2 ** 20)} MiB for ${step.ms} ms, then deleted the ballast`;
      }
      if (target.storageFault === undefined) throw new StepSkipped('disk-full: the target cannot inject storage faults');
      history.fault(`ENOSPC on node ${node}`, [node]);
      await target.storageFault(node, 'ENOSPC');
      await sleep(step.ms);
      await target.storageFault(node, null);
      history.fault(`space back on node ${node}`, [node]);
      return `ENOSPC on node ${node} (${step.role}) for ${step.ms} ms`;
    }
    case 'metadata-disk-full': {
      if (target.storageFault === undefined || target.watch === undefined) throw new StepSkipped('metadata-disk-full: the target cannot fail a metadata log and restart the node');
      const watch = target.watch.bind(target);
      const exited = nextEvent(watch, node, 'exited', 20_000);
      const restarted = nextEvent(watch, node, 'restarted', 60_000);
      history.fault(`ENOSPC on node ${node}'s metadata log (${step.role})`, [node]);
      await target.storageFault(node, 'ENOSPC', 'metadata');
      // A quiet cluster writes nothing to its metadata log: create a topic, so every voter does.
      context.metadataWrites += 1;
      // It fails when the node the fault hit was the controller; the write was attempted, which is all it is for.
      void createTopic(target, { topic: `${topic}-meta${context.metadataWrites}`, numPartitions: 1, replicationFactor: 1 }, 10, 10_000).catch(() => undefined);
      try {
        const exit = await exited.promise;
        if (exit.code !== EXIT_METADATA_LOG_FAILED) throw new Error(`node ${node} exited with code ${exit.code} after its metadata log failed; expected ${EXIT_METADATA_LOG_FAILED}`);
        await restarted.promise;
      } finally {
        // Whichever wait failed, the other one must not reject later with no one listening.
        exited.cancel();
        restarted.cancel();
      }
      return `ENOSPC on node ${node}'s metadata log (${step.role}): it halted with exit code ${EXIT_METADATA_LOG_FAILED} and its supervisor restarted it`;
    }
    case 'torn-tail':
    case 'bit-flip':
    case 'wipe': {
      const dataDir = target.dataDir?.(node);
      if (dataDir === undefined) throw new StepSkipped(`${step.kind}: the target gives no access to data dirs`);
      history.fault(`SIGKILL node ${node} (${step.role}) for ${step.kind}`, [node]);
      await target.fault(node, 'kill');
      const damage = step.kind === 'torn-tail' ? await tornTail(dataDir, topic, step.partition, random) : step.kind === 'bit-flip' ? await flipBit(dataDir, topic, step.partition, random) : await wipe(dataDir);
      history.fault(damage.what, [node]);
      await sleep(step.downMs);
      await target.start(node);
      history.fault(`restarted node ${node}`, [node]);
      if (!damage.damaged) throw new StepSkipped(`node ${node} (${step.role}): ${damage.what}; restarted`);
      if (step.kind === 'wipe') {
        // A wiped voter holds no metadata until the controller has re-added it. Wiping a second
        // node before then would leave a majority of the voters without their data: no quorum,
        // for good, as in Kafka. The step ends once the cluster has its redundancy back.
        await waitVoterAgain(target, clients, node, 60_000);
        await waitUnderReplicatedZero(target, 60_000);
        history.fault(`node ${node} is a voter again and no partition is under-replicated`, [node]);
        return `node ${node} (${step.role}): ${damage.what}; restarted, a voter again and fully replicated`;
      }
      return `node ${node} (${step.role}): ${damage.what}; restarted`;
    }
  }
}

/** The next event of `kind` for `node`; the promise rejects after timeoutMs unless cancelled first (then it never settles). */
function nextEvent(watch: NonNullable<ChaosTarget['watch']>, node: number, kind: NodeEvent['kind'], timeoutMs: number): { promise: Promise<NodeEvent>; cancel(): void } {
  let cancel = () => undefined as void;
  const promise = new Promise<NodeEvent>((resolve, reject) => {
    const timer = setTimeout(() => {
      unwatch();
      reject(new Error(`node ${node}: no '${kind}' within ${timeoutMs} ms`));
    }, timeoutMs);
    const unwatch = watch((event) => {
      if (event.node !== node || event.kind !== kind) return;
      clearTimeout(timer);
      unwatch();
      resolve(event);
    });
    cancel = () => {
      clearTimeout(timer);
      unwatch();
    };
  });
  return { promise, cancel };
}

/** Creates a topic through any node, the admin client retrying up to `retries` times; its connection is closed either way. */
async function createTopic(target: ChaosTarget, topic: ITopicConfig, retries: number, timeoutMs: number): Promise<void> {
  const admin = new Kavka({ clientId: 'chaos-admin', brokers: target.bootstrap(), retry: { retries } }).admin();
  try {
    await admin.connect();
    await admin.createTopics({ topics: [topic], timeoutMs });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Resumes paused nodes, heals links and starts any node that is down. */
async function healAll(target: ChaosTarget, pausedNodes: Set<number>): Promise<void> {
  await target.heal();
  for (const id of pausedNodes) await target.fault(id, 'resume');
  pausedNodes.clear();
  for (const id of target.nodeIds) if (!(await target.isRunning(id))) await target.start(id);
}

/** Until the active controller lists `node` among the metadata quorum's voters. */
async function waitVoterAgain(target: ChaosTarget, clients: ReadbackClients, node: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const via of target.nodeIds) {
      const controller = await clients.controller(via).catch(() => -1);
      if (controller < 0) continue;
      const voters = await clients.voters(controller).catch(() => undefined);
      if (voters?.includes(node) === true) return;
      break;
    }
    if (Date.now() > deadline) throw new Error(`node ${node} was not a controller voter again within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** Every node up and ready, and no partition under-replicated (per its leader's /metrics). */
async function waitUnderReplicatedZero(target: ChaosTarget, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let clean = true;
    for (const id of target.nodeIds) {
      const ready = await fetch(`${target.adminUrl(id)}/readyz`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.ok, () => false);
      const text = ready ? await fetch(`${target.adminUrl(id)}/metrics`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.text(), () => '') : '';
      if (!ready || text === '' || /^kavka_partition_under_replicated\{[^}]*\} 1$/m.test(text)) clean = false;
    }
    if (clean) return;
    if (Date.now() > deadline) throw new Error(`under-replicated partitions did not reach 0 within ${timeoutMs} ms`);
    await sleep(200);
  }
}

export interface LogExcerpt {
  node: number;
  file: string;
  fromLine: number;
  toLine: number;
  /** Warnings and errors in the window (at most 5). */
  notable: string[];
}

/** The lines of each node's log within two seconds of the violation's operation (or the faults around it). */
async function linkToLogs(target: ChaosTarget, history: History, violation: Violation): Promise<LogExcerpt[]> {
  const op = violation.value === undefined ? undefined : history.ops.find((o) => o.values.includes(violation.value as string));
  const from = op === undefined ? (history.faults[0]?.wallMs ?? 0) : history.wallTime(op.invokedAt);
  const to = op?.completedAt === undefined ? (history.faults[history.faults.length - 1]?.wallMs ?? Date.now()) : history.wallTime(op.completedAt);
  const excerpts: LogExcerpt[] = [];
  for (const node of target.nodeIds) {
    const file = target.logFile(node);
    if (file === undefined) continue;
    const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n');
    let first = -1;
    let last = -1;
    const notable: string[] = [];
    lines.forEach((line, i) => {
      const time = /"time":(\d+)/.exec(line)?.[1];
      if (time === undefined) return;
      const t = Number(time);
      if (t < from - 2_000 || t > to + 2_000) return;
      if (first < 0) first = i + 1;
      last = i + 1;
      if (notable.length < 5 && /"level":(40|50|60)/.test(line)) notable.push(line.slice(0, 300));
    });
    if (first > 0) excerpts.push({ node, file, fromLine: first, toLine: last, notable });
  }
  return excerpts;
}
