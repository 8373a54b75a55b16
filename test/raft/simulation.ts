// A deterministic simulation of a Raft cluster (in the spirit of TigerBeetle's VOPR and Kafka's
// RaftEventSimulationTest). One seeded PRNG drives everything: message loss, duplication, delay
// (hence reordering), partitions (symmetric and one-way), crashes and restarts (only what a node
// persisted survives, and a Ready may be caught half-way: not yet persisted), client proposals,
// compaction, membership changes and leadership transfers. The same seed replays exactly.
//
// Named checkers run incrementally as events happen (never a rescan of every log per step):
//   SingleLeaderPerTerm  at most one leader per term, ever
//   LogMatching          two persisted entries with the same index and term have the same
//                        payload and the same previous term (so, by induction, the same prefix)
//   LeaderCompleteness   a new leader of term T holds every entry known committed before T
//   StateMachineSafety   no two nodes apply different entries at an index, a node never applies
//                        a different entry at an index again (after a restart), snapshots agree
//   CommittedNeverLost   durable state never drops or rewrites a committed entry, and a
//                        restarted node's commit index never goes back
// Then a liveness phase: heal everything, restart every node, and require a leader and the
// commitment of a new proposal on every member within a tick budget.
//
// With `wipes`, a crashed node may also lose its whole store (Kavka issue 6: log.dirs deleted)
// and come back empty under the same id, formatted as rejoining with a new directory id (as
// RaftNode does when a peer says the cluster exists). The leader then plays the controller's
// part: it removes a rejoining voter and adds it back with its directory id. With
// `unsafeWipes` the store comes back as a plain empty one (the bug the rule fixes): the
// checkers must catch that on some seeds.

import {
  RaftCore,
  formatConfig,
  makeConfig,
  members,
  type ClusterConfig,
  type ConfigChange,
  type Entry,
  type Message,
  type NodeId,
  type RaftOptions,
  type Ready,
} from '../../src/raft/index.js';
import { formatEntry, formatMessage } from './format.js';
import { MemoryStorage } from './memory-storage.js';
import { Prng } from './prng.js';
import { TestStateMachine } from './state-machine.js';

export interface SimulationOptions {
  readonly seed: number;
  /** Initial voters (ids 1..nodes); one more node (nodes + 1) starts outside the configuration. */
  readonly nodes: number;
  readonly faultTicks?: number;
  readonly livenessBudgetTicks?: number;
  /** Keep a trace of events (for replaying a failure). */
  readonly trace?: boolean;
  /** Crashed nodes may lose their whole store and rejoin (see the file header). */
  readonly wipes?: boolean;
  /** Wiped stores come back without the rejoining flag (to show the checkers catch it). */
  readonly unsafeWipes?: boolean;
}

export interface SimulationResult {
  readonly seed: number;
  readonly committed: number;
  readonly elections: number;
  readonly crashes: number;
  readonly messagesDelivered: number;
  readonly livenessTicks: number;
  readonly wipes: number;
  /** Rejoining nodes that became voters again by an add-voter naming their directory id. */
  readonly rejoined: number;
  /** The liveness phase found no voter holding every committed entry after a wipe (no leader is right). */
  readonly unavailableAfterWipe: boolean;
  readonly trace: string[];
}

export class SimulationFailure extends Error {
  constructor(
    readonly seed: number,
    readonly nodes: number,
    readonly checker: string,
    detail: string,
    readonly trace: string[],
    flags = '',
  ) {
    super(
      `${checker}: ${detail}\nseed=${seed} nodes=${nodes}${flags}\n` +
        `replay: npm run sim -- --seeds 1 --start ${seed} --nodes ${nodes}${flags} --trace`,
    );
    this.name = 'SimulationFailure';
  }
}

interface InFlight {
  readonly message: Message;
  readonly deliverAt: number;
}

interface SimNode {
  readonly id: NodeId;
  options: RaftOptions; // a wipe gives it a new directoryId
  core: RaftCore | undefined; // undefined while crashed
  storage: MemoryStorage; // a wipe replaces it
  /** The directory id of the store before the last wipe (a stale add-voter names it). */
  previousDirectoryId: string | undefined;
  /** Rejoining as last seen (the core's status, or the store's hard state while crashed). */
  rejoining: boolean;
  stateMachine: TestStateMachine;
  /** A Ready handed out but not yet persisted (a slow disk); a crash loses it. */
  pending: Ready | undefined;
  wasLeaderInTerm: number;
}

interface CommittedEntry {
  readonly term: number;
  readonly digest: string;
  /** The entry was committed in some term <= this (the lowest term of a node seen applying it). */
  termBound: number;
}

const encoder = new TextEncoder();
const ELECTION_TIMEOUT_TICKS = 10;
const HEARTBEAT_INTERVAL_TICKS = 2;

export function runSimulation(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}

class Simulation {
  private readonly prng: Prng;
  private readonly seed: number;
  private readonly voterCount: number;
  private readonly faultTicks: number;
  private readonly livenessBudgetTicks: number;
  private readonly traceEnabled: boolean;
  private readonly trace: string[] = [];
  private readonly nodes: SimNode[] = [];
  private readonly bootstrap: ClusterConfig;
  private now = 0;
  private inFlight: InFlight[] = [];
  private readonly cutLinks = new Set<string>();

  // Fault rates, drawn per seed.
  private readonly dropRate: number;
  private readonly duplicateRate: number;
  private readonly maxDelayTicks: number;
  private readonly slowDiskRate: number;
  private faultsOn = true;
  private readonly membershipChanges: boolean;

  // Checker state.
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly entriesByKey = new Map<string, { digest: string; prevTerm: number }>();
  private readonly committed = new Map<number, CommittedEntry>();
  private maxCommittedIndex = 0;

  private readonly wipesEnabled: boolean;
  private readonly unsafeWipes: boolean;
  private wipes = 0;
  private rejoined = 0;
  private unavailableAfterWipe = false;
  private proposals = 0;
  private elections = 0;
  private crashes = 0;
  private delivered = 0;

  constructor(options: SimulationOptions) {
    this.seed = options.seed;
    this.prng = new Prng(options.seed);
    this.voterCount = options.nodes;
    this.faultTicks = options.faultTicks ?? 1000;
    this.livenessBudgetTicks = options.livenessBudgetTicks ?? 600;
    this.traceEnabled = options.trace ?? false;
    this.wipesEnabled = (options.wipes ?? false) || (options.unsafeWipes ?? false);
    this.unsafeWipes = options.unsafeWipes ?? false;
    this.dropRate = this.prng.next() * 0.2;
    this.duplicateRate = this.prng.next() * 0.05;
    this.maxDelayTicks = 1 + this.prng.int(6);
    this.slowDiskRate = this.prng.next() * 0.5;
    const preVote = this.prng.chance(0.8);
    const checkQuorum = this.prng.chance(0.8);
    // Without both, a server removed before it learned of its removal keeps campaigning and
    // deposes leaders forever (thesis §4.2.3): plain Raft is only tested with a fixed membership.
    this.membershipChanges = preVote || checkQuorum;
    const voters = Array.from({ length: this.voterCount }, (_, i) => i + 1);
    this.bootstrap = makeConfig(voters);
    for (let id = 1; id <= this.voterCount + 1; id++) {
      const random = this.prng.fork();
      const nodeOptions: RaftOptions = {
        id,
        electionTimeoutTicks: ELECTION_TIMEOUT_TICKS,
        heartbeatIntervalTicks: HEARTBEAT_INTERVAL_TICKS,
        random: () => random.next(),
        preVote,
        checkQuorum,
        maxEntriesPerAppend: 1 + this.prng.int(8),
        maxInflightAppends: 1 + this.prng.int(8),
        directoryId: `d${id}.0`,
      };
      const storage = new MemoryStorage();
      this.nodes.push({
        id,
        options: nodeOptions,
        core: new RaftCore(nodeOptions, storage.durable(), this.bootstrap),
        storage,
        previousDirectoryId: undefined,
        rejoining: false,
        stateMachine: new TestStateMachine(),
        pending: undefined,
        wasLeaderInTerm: 0,
      });
    }
    this.log(
      `seed=${this.seed} voters=${this.voterCount} drop=${this.dropRate.toFixed(3)} dup=${this.duplicateRate.toFixed(3)} ` +
        `maxDelay=${this.maxDelayTicks} slowDisk=${this.slowDiskRate.toFixed(2)} preVote=${preVote} checkQuorum=${checkQuorum} membershipChanges=${this.membershipChanges}`,
    );
  }

  run(): SimulationResult {
    let livenessTicks: number;
    try {
      for (; this.now < this.faultTicks; this.now++) {
        this.injectFaults();
        this.step();
      }
      livenessTicks = this.runLiveness();
    } catch (err) {
      if (err instanceof SimulationFailure) throw err;
      // An assertion inside the core (or the storage contract check) is a failure of this seed too.
      this.fail('Assertion', (err as Error).stack ?? String(err));
    }
    return {
      seed: this.seed,
      committed: this.maxCommittedIndex,
      elections: this.elections,
      crashes: this.crashes,
      messagesDelivered: this.delivered,
      livenessTicks,
      wipes: this.wipes,
      rejoined: this.rejoined,
      unavailableAfterWipe: this.unavailableAfterWipe,
      trace: this.trace,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // One tick of simulated time: deliver what is due, tick every live node, process Readies.

  private step(): void {
    const due = this.inFlight.filter((f) => f.deliverAt <= this.now);
    this.inFlight = this.inFlight.filter((f) => f.deliverAt > this.now);
    // Faulty network: any order. Healed network: in send order, as over a gRPC stream per link.
    if (this.faultsOn) this.shuffle(due);
    for (const { message } of due) this.deliver(message);
    for (const node of this.nodes) {
      if (node.core === undefined) continue;
      node.core.tick();
      this.observe(node);
    }
    for (const node of this.shuffled(this.nodes)) this.processReadies(node);
  }

  private deliver(message: Message): void {
    const node = this.nodes[message.to - 1];
    if (node.core === undefined || this.cutLinks.has(`${message.from}->${message.to}`)) return;
    this.delivered++;
    if (this.traceEnabled) this.log(`deliver ${formatMessage(message)}`);
    node.core.step(message);
    this.observe(node);
  }

  private processReadies(node: SimNode): void {
    for (let round = 0; round < 10; round++) {
      const core = node.core;
      if (core === undefined) return;
      if (node.pending === undefined) {
        if (!core.hasReady()) return;
        node.pending = core.ready();
        // A slow disk: the Ready stays unpersisted for a while; the node keeps stepping meanwhile.
        if (this.faultsOn && this.prng.chance(this.slowDiskRate)) return;
      }
      const rd = node.pending;
      node.pending = undefined;
      this.persist(node, rd);
      for (const message of rd.messages) this.send(message);
      this.apply(node, rd);
      core.advance(rd);
      this.observe(node);
    }
  }

  private send(message: Message): void {
    if (this.faultsOn && this.prng.chance(this.dropRate)) return;
    const copies = this.faultsOn && this.prng.chance(this.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.faultsOn ? 1 + this.prng.int(this.maxDelayTicks) : 1;
      this.inFlight.push({ message, deliverAt: this.now + delay });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Faults and client activity.

  private injectFaults(): void {
    const live = this.nodes.filter((n) => n.core !== undefined);
    if (this.prng.chance(0.4) && live.length > 0) {
      // Clients mostly find the leader; sometimes they ask whoever they reach.
      const leaders = this.leaders();
      const target = leaders.length > 0 && this.prng.chance(0.7) ? this.prng.pick(leaders) : this.prng.pick(live);
      this.propose(target, `v${this.seed}.${this.proposals++}`);
    }
    if (this.prng.chance(0.012) && live.length > 0) this.crash(this.prng.pick(live));
    const crashed = this.nodes.filter((n) => n.core === undefined);
    if (this.prng.chance(0.04) && crashed.length > 0) {
      const node = this.prng.pick(crashed);
      if (this.wipesEnabled && this.prng.chance(0.3) && this.canWipe(node)) this.wipe(node);
      this.restart(node);
    }
    if (this.wipesEnabled && this.membershipChanges && this.prng.chance(0.05)) this.reAddRejoining();
    if (this.prng.chance(0.025)) this.changeNetwork();
    if (this.prng.chance(0.02) && this.membershipChanges) this.changeMembership();
    if (this.prng.chance(0.005)) this.transferLeadership();
    for (const node of this.nodes) {
      if (node.core !== undefined && this.prng.chance(0.02)) this.compact(node);
    }
  }

  private propose(node: SimNode, value: string): void {
    const result = node.core?.propose(encoder.encode(value));
    if (result?.ok && this.traceEnabled) this.log(`propose ${node.id} ${value} -> ${result.index}@${result.term}`);
  }

  private crash(node: SimNode): void {
    this.crashes++;
    this.log(`crash ${node.id}${node.pending !== undefined ? ' (losing an unpersisted Ready)' : ''}`);
    node.core = undefined;
    node.pending = undefined;
  }

  /**
   * Liveness needs a majority of voters that can vote: wipe only when, in every live node's
   * configuration, the voters that are not rejoining (without this one) still form a quorum.
   */
  private canWipe(victim: SimNode): boolean {
    if (this.nodes.some((n) => n !== victim && n.rejoining)) return false;
    return this.nodes.every((n) => {
      // A crashed node's configuration is the one its store would restart with.
      const config = (n.core ?? new RaftCore(n.options, n.storage.durable(), this.bootstrap)).status().config;
      const voting = config.voters.filter((id) => id !== victim.id && !this.nodes[id - 1].rejoining);
      return voting.length >= Math.floor(config.voters.length / 2) + 1 && voting.length >= 2;
    });
  }

  /** The node (crashed) loses its whole store: it restarts empty with a new directory id. */
  private wipe(node: SimNode): void {
    this.wipes++;
    const clusterExists = this.nodes.some((n) => n.storage.hardState.term > 0 || n.storage.lastIndex() > 0);
    node.previousDirectoryId = node.options.directoryId;
    node.options = { ...node.options, directoryId: `d${node.id}.${this.wipes}` };
    node.storage = new MemoryStorage();
    if (clusterExists && !this.unsafeWipes) node.storage.hardState = { ...node.storage.hardState, rejoining: true };
    node.rejoining = node.storage.hardState.rejoining === true;
    node.stateMachine = new TestStateMachine();
    this.log(`wipe ${node.id}: new store ${node.options.directoryId}${node.rejoining ? ' (rejoining)' : ''}`);
  }

  /**
   * The controller's part (QuorumController.reconcileRejoiningVoters): the leader removes a
   * rejoining voter, and adds a rejoining learner back as a voter with its directory id.
   */
  private reAddRejoining(): void {
    const leader = this.currentLeader();
    if (leader === undefined) return;
    const core = leader.core as RaftCore;
    const config = core.status().config;
    for (const node of this.nodes) {
      if (!node.rejoining || node === leader) continue;
      let change: ConfigChange | undefined;
      if (config.voters.includes(node.id)) change = { type: 'remove-voter', nodeId: node.id };
      else if (config.learners.includes(node.id)) change = { type: 'add-voter', nodeId: node.id, directoryId: node.options.directoryId };
      else change = { type: 'add-learner', nodeId: node.id };
      if (change.type === 'remove-voter' && config.voters.length <= 2) continue;
      const result = core.proposeConfigChange(change);
      if (result.ok) this.log(`re-add at ${leader.id}: ${change.type} ${change.nodeId} -> ${result.index}@${result.term}`);
      return;
    }
  }

  private restart(node: SimNode): void {
    const before = node.storage.hardState.commit;
    node.core = new RaftCore(node.options, node.storage.durable(), this.bootstrap);
    node.stateMachine = new TestStateMachine();
    if (node.storage.snapshot !== undefined) {
      node.stateMachine.applySnapshot(node.storage.snapshot);
      this.checkSnapshotValues(node, node.storage.snapshot.data);
    }
    const status = node.core.status();
    this.check(status.committed >= before, 'CommittedNeverLost', `node ${node.id} restarted with commit ${status.committed} < ${before}`);
    node.wasLeaderInTerm = 0;
    this.log(`restart ${node.id} term=${status.term} log=[${status.firstIndex},${status.lastIndex}] commit=${status.committed}`);
  }

  private changeNetwork(): void {
    const ids = this.nodes.map((n) => n.id);
    const choice = this.prng.int(4);
    if (choice === 0) {
      this.cutLinks.clear();
      this.log('network: heal');
    } else if (choice === 1) {
      this.cutLinks.clear();
      const side = new Set(ids.filter(() => this.prng.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.cutLinks.add(`${a}->${b}`);
      this.log(`network: partition [${[...side].join(',')}] | [${ids.filter((i) => !side.has(i)).join(',')}]`);
    } else if (choice === 2) {
      const victim = this.prng.pick(ids);
      for (const other of ids) {
        if (other === victim) continue;
        this.cutLinks.add(`${victim}->${other}`);
        this.cutLinks.add(`${other}->${victim}`);
      }
      this.log(`network: isolate ${victim}`);
    } else {
      const from = this.prng.pick(ids);
      const to = this.prng.pick(ids.filter((i) => i !== from));
      this.cutLinks.add(`${from}->${to}`);
      this.log(`network: cut one way ${from}->${to}`);
    }
  }

  private leaders(): SimNode[] {
    return this.nodes.filter((n) => n.core?.softState().role === 'leader');
  }

  private changeMembership(): void {
    const leaders = this.leaders();
    if (leaders.length === 0) return;
    const leader = this.prng.pick(leaders);
    const core = leader.core as RaftCore;
    const config = core.status().config;
    const all = this.nodes.map((n) => n.id);
    const options: ConfigChange[] = [];
    for (const id of all) {
      if (config.learners.includes(id)) {
        options.push({ type: 'add-voter', nodeId: id }, { type: 'remove-learner', nodeId: id });
      } else if (config.voters.includes(id)) {
        if (config.voters.length > 2) options.push({ type: 'remove-voter', nodeId: id });
      } else {
        options.push({ type: 'add-learner', nodeId: id }, { type: 'add-voter', nodeId: id });
      }
    }
    const live = options.filter((c) => this.keepsVotingQuorum(config, c));
    if (live.length === 0) return;
    let change = this.prng.pick(live);
    const stale = this.nodes[change.nodeId - 1].previousDirectoryId;
    if (change.type === 'add-voter' && stale !== undefined && this.prng.chance(0.5)) {
      // An add-voter naming an earlier store of the node must not end its rejoining.
      change = { type: 'add-voter', nodeId: change.nodeId, directoryId: stale };
    }
    const result = core.proposeConfigChange(change);
    if (result.ok) this.log(`config change at ${leader.id}: ${change.type} ${change.nodeId} -> ${result.index}@${result.term}`);
  }

  /** After the change, do the voters that are not rejoining still form a quorum? (Liveness only.) */
  private keepsVotingQuorum(config: ClusterConfig, change: ConfigChange): boolean {
    let voters = config.voters;
    if (change.type === 'add-voter') voters = [...voters, change.nodeId];
    if (change.type === 'remove-voter') voters = voters.filter((id) => id !== change.nodeId);
    const voting = voters.filter((id) => !this.nodes[id - 1].rejoining).length;
    return voting >= Math.floor(voters.length / 2) + 1;
  }

  private transferLeadership(): void {
    const leaders = this.leaders();
    if (leaders.length === 0) return;
    const leader = this.prng.pick(leaders);
    const core = leader.core as RaftCore;
    const voters = core.status().config.voters.filter((v) => v !== leader.id);
    if (voters.length === 0) return;
    const target = this.prng.pick(voters);
    const result = core.transferLeadership(target);
    if (result.ok) this.log(`transfer leadership ${leader.id} -> ${target}`);
  }

  private compact(node: SimNode): void {
    const core = node.core as RaftCore;
    const applied = node.stateMachine.appliedIndex;
    if (applied - core.status().firstIndex < 4) return;
    if (core.compact(applied, node.stateMachine.snapshotData())) {
      node.storage.compact(core.currentSnapshot());
      if (this.traceEnabled) this.log(`compact ${node.id} through ${applied}`);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Liveness: heal, restart everyone, and require progress within the budget.

  private runLiveness(): number {
    this.faultsOn = false;
    this.cutLinks.clear();
    for (const node of this.nodes) if (node.core === undefined) this.restart(node);
    this.log('liveness: healed, every node up');
    const value = `final.${this.seed}`;
    const start = this.now;
    let lastProposal = -Infinity;
    for (; this.now < start + this.livenessBudgetTicks; this.now++) {
      this.step();
      const leader = this.currentLeader();
      if (leader === undefined) continue;
      const core = leader.core as RaftCore;
      if (this.now - lastProposal >= 4 * ELECTION_TIMEOUT_TICKS) {
        if (core.propose(encoder.encode(value)).ok) lastProposal = this.now;
      }
      const config = core.status().config;
      const done = members(config).every((id) =>
        this.nodes[id - 1].stateMachine.values.some((v) => v.value === value),
      );
      if (done) {
        this.log(`liveness: ${value} applied on every member after ${this.now - start} ticks`);
        return this.now - start;
      }
    }
    if (this.wipesEnabled && !this.anyElectable()) {
      // A wipe took the only voter copy of the newest entries (the other copies are on
      // non-voters) or the vote a candidate needed: no candidate can collect a quorum of votes
      // from up-to-date-enough voters, so the cluster rightly stays without a leader.
      this.unavailableAfterWipe = true;
      this.log('liveness: after a wipe no candidate can win an election; staying unavailable is correct');
      return this.livenessBudgetTicks;
    }
    const status = this.nodes.map((n) => {
      const s = n.core?.status();
      if (s === undefined) return `${n.id}: down`;
      const progress = s.progress === undefined ? '' : ` progress={${[...s.progress].map(([id, p]) => `${id}:${p.state} ${p.match}/${p.next}`).join(', ')}}`;
      return `${n.id}: ${s.role} t${s.term} log=[${s.firstIndex},${s.lastIndex}] commit=${s.committed} ${formatConfig(s.config)}${progress}`;
    });
    this.fail('Liveness', `no leader committed a new proposal on every member within ${this.livenessBudgetTicks} ticks of healing: ${status.join('; ')}`);
  }

  /**
   * Could any node win an election? A candidate must be a voter in its own configuration and not
   * rejoining, and needs a quorum of its configuration's voters that are not rejoining and whose
   * logs are no more up to date than its own (§5.4.1).
   */
  private anyElectable(): boolean {
    const last = (core: RaftCore) => {
      const status = core.status();
      const term = status.lastIndex >= status.firstIndex ? core.entries(status.lastIndex, status.lastIndex)[0].term : core.currentSnapshot().metadata.term;
      return { index: status.lastIndex, term };
    };
    const upToDate = (a: { index: number; term: number }, b: { index: number; term: number }) => a.term > b.term || (a.term === b.term && a.index >= b.index);
    return this.nodes.some((candidate) => {
      const core = candidate.core;
      if (core === undefined) return false;
      const status = core.status();
      if (status.rejoining || !status.config.voters.includes(candidate.id)) return false;
      const mine = last(core);
      const votes = status.config.voters.filter((id) => {
        const voter = this.nodes[id - 1].core;
        return voter !== undefined && !voter.status().rejoining && upToDate(mine, last(voter));
      });
      return votes.length >= Math.floor(status.config.voters.length / 2) + 1;
    });
  }

  /** The leader of the highest term, if any node leads. */
  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.leaders()) {
      const term = (node.core as RaftCore).softState().term;
      if (term > bestTerm) {
        best = node;
        bestTerm = term;
      }
    }
    return best;
  }

  // ---------------------------------------------------------------------------------------------
  // Driver steps with their checks.

  private persist(node: SimNode, rd: Ready): void {
    const storage = node.storage;
    const durableCommit = storage.hardState.commit;
    if (rd.truncateFrom !== undefined) {
      this.check(rd.truncateFrom > durableCommit, 'CommittedNeverLost', `node ${node.id} truncates from ${rd.truncateFrom} below its durable commit ${durableCommit}`);
    }
    if (rd.snapshot !== undefined) {
      this.check(rd.snapshot.metadata.index > durableCommit, 'CommittedNeverLost', `node ${node.id} replaces its log with snapshot ${rd.snapshot.metadata.index} <= durable commit ${durableCommit}`);
    }
    storage.persist(rd);
    for (const entry of rd.entries) this.checkLogMatching(node, entry);
    if (rd.hardState !== undefined) {
      this.check(rd.hardState.commit >= durableCommit, 'CommittedNeverLost', `node ${node.id} persists commit ${rd.hardState.commit} < ${durableCommit}`);
    }
  }

  private checkLogMatching(node: SimNode, entry: Entry): void {
    const prevTerm = termAt(node.storage, entry.index - 1);
    const key = `${entry.index}@${entry.term}`;
    const digest = digestOf(entry);
    const seen = this.entriesByKey.get(key);
    if (seen === undefined) {
      this.entriesByKey.set(key, { digest, prevTerm });
      return;
    }
    this.check(seen.digest === digest, 'LogMatching', `entry ${key} on node ${node.id} is ${digest}, elsewhere ${seen.digest}`);
    this.check(seen.prevTerm === prevTerm, 'LogMatching', `entry ${key} on node ${node.id} follows term ${prevTerm}, elsewhere ${seen.prevTerm}`);
    const committed = this.committed.get(entry.index);
    if (committed !== undefined && entry.index <= node.storage.hardState.commit) {
      this.check(committed.term === entry.term, 'CommittedNeverLost', `node ${node.id} rewrites committed entry ${entry.index}`);
    }
  }

  private apply(node: SimNode, rd: Ready): void {
    const term = (node.core as RaftCore).softState().term;
    if (rd.snapshot !== undefined) {
      node.stateMachine.applySnapshot(rd.snapshot);
      this.checkSnapshotValues(node, rd.snapshot.data);
    }
    for (const entry of rd.committedEntries) {
      node.stateMachine.apply(entry);
      const digest = digestOf(entry);
      const known = this.committed.get(entry.index);
      if (known === undefined) {
        this.committed.set(entry.index, { term: entry.term, digest, termBound: term });
        this.maxCommittedIndex = Math.max(this.maxCommittedIndex, entry.index);
        if (this.traceEnabled) this.log(`committed ${formatEntry(entry)} (first applied on ${node.id})`);
      } else {
        this.check(
          known.digest === digest && known.term === entry.term,
          'StateMachineSafety',
          `node ${node.id} applies ${formatEntry(entry)} at ${entry.index}, elsewhere ${known.digest}@${known.term}`,
        );
        known.termBound = Math.min(known.termBound, term);
      }
    }
  }

  private checkSnapshotValues(node: SimNode, data: Uint8Array): void {
    const sm = new TestStateMachine();
    sm.applySnapshot({ metadata: { index: 0, term: 0, config: this.bootstrap }, data });
    for (const v of sm.values) {
      const known = this.committed.get(v.index);
      this.check(
        known === undefined || (known.term === v.term && known.digest === `normal:${v.value}`),
        'StateMachineSafety',
        `node ${node.id} snapshot holds ${v.index}@${v.term} ${v.value}, committed is ${known?.digest}@${known?.term}`,
      );
    }
  }

  /** After every event on a node: SingleLeaderPerTerm, and LeaderCompleteness for a new leader. */
  private observe(node: SimNode): void {
    const core = node.core as RaftCore;
    if (node.rejoining) {
      const status = core.status();
      this.check(status.role === 'follower', 'RejoiningNeverCampaigns', `rejoining node ${node.id} is a ${status.role} in term ${status.term}`);
      if (!status.rejoining) {
        node.rejoining = false;
        this.rejoined++;
        this.log(`rejoined ${node.id} as ${node.options.directoryId}`);
      }
    }
    const soft = core.softState();
    if (soft.role !== 'leader' || node.wasLeaderInTerm === soft.term) return;
    node.wasLeaderInTerm = soft.term;
    this.elections++;
    const other = this.leaderOfTerm.get(soft.term);
    this.check(other === undefined || other === node.id, 'SingleLeaderPerTerm', `nodes ${other} and ${node.id} both lead term ${soft.term}`);
    this.leaderOfTerm.set(soft.term, node.id);
    this.log(`leader ${node.id} term ${soft.term}`);
    const status = core.status();
    const snapshotIndex = status.firstIndex - 1;
    for (const [index, entry] of this.committed) {
      if (entry.termBound >= soft.term || index <= snapshotIndex) continue;
      const has = index <= status.lastIndex ? core.entries(index, index)[0] : undefined;
      this.check(
        has !== undefined && has.term === entry.term,
        'LeaderCompleteness',
        `leader ${node.id} of term ${soft.term} lacks committed entry ${index}@${entry.term} (has ${has === undefined ? 'nothing' : formatEntry(has)})`,
      );
    }
  }

  // ---------------------------------------------------------------------------------------------

  private check(condition: boolean, checker: string, detail: string): void {
    if (!condition) this.fail(checker, detail);
  }

  private fail(checker: string, detail: string): never {
    const flags = this.unsafeWipes ? ' --unsafe-wipes' : this.wipesEnabled ? ' --wipes' : '';
    throw new SimulationFailure(this.seed, this.voterCount, checker, `tick ${this.now}: ${detail}`, this.trace, flags);
  }

  private log(line: string): void {
    if (this.traceEnabled) this.trace.push(`[${this.now}] ${line}`);
  }

  private shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.prng.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  private shuffled<T>(items: readonly T[]): T[] {
    return this.shuffle([...items]);
  }
}

function termAt(storage: MemoryStorage, index: number): number {
  const snapshotIndex = storage.snapshot?.metadata.index ?? 0;
  if (index === snapshotIndex) return storage.snapshot?.metadata.term ?? 0;
  const first = storage.entries[0]?.index ?? snapshotIndex + 1;
  return storage.entries[index - first]?.term ?? -1;
}

const decoder = new TextDecoder();

function digestOf(entry: Entry): string {
  const p = entry.payload;
  switch (p.kind) {
    case 'normal':
      return `normal:${decoder.decode(p.data)}`;
    case 'noop':
      return 'noop';
    case 'config':
      return `config:${p.change.type}:${p.change.nodeId}`;
  }
}
