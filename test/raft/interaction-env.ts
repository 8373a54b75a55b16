// The environment behind the Raft transcripts (test/raft/testdata/*.txt): a handful of RaftCores,
// each with in-memory durable storage and a test state machine, and a network of per-recipient
// queues that the transcript delivers explicitly. Modeled on etcd-raft's interaction tests.
//
// Commands (ids are node ids; `N...` means one or more):
//   add-nodes <count> [voters=1,2,3] [learners=4] [prevote=true] [checkquorum=true]
//             [election=10] [heartbeat=1] [max-entries=64] [max-inflight=16]
//                                   new nodes with the next ids; voters defaults to the new ids
//   campaign <id>                   start an election now
//   propose <id> <value>            propose a normal entry
//   propose-conf-change <id> <add-voter|remove-voter|add-learner|remove-learner> <node>
//   transfer-leadership <from> <to>
//   tick <id> [count] | tick-election <id> | tick-heartbeat <id>
//   set-random <id> <r>             random() returns r from now on: the node's election timeout,
//                                   from its next reset, is T + floor(r * T) (tick-election's count)
//   process-ready <N...>            print each Ready, persist, queue its messages, apply, advance
//   deliver-msgs <N...>             deliver every queued message addressed to these nodes
//   drop-msgs <N...>                discard them
//   stabilize [N...]                process-ready and deliver until nothing is left
//   status <id> | raft-log <id>     print state / the log
//   compact <id> <index>            snapshot the state machine at <index> and compact
//   restart <id>                    crash and restart from durable storage only
//   isolate <id> | cut <a> <b> | cut-one-way <from> <to> | heal
// Election timeouts are not randomized unless set-random says so, so tick-election is exact.

import { assert } from '../../src/util/assert.js';
import {
  RaftCore,
  formatConfig,
  makeConfig,
  type ConfigChange,
  type Message,
  type NodeId,
  type ProposeResult,
  type RaftOptions,
} from '../../src/raft/index.js';
import { formatEntries, formatMessage, formatReady } from './format.js';
import { MemoryStorage } from './memory-storage.js';
import { TestStateMachine } from './state-machine.js';

interface EnvNode {
  core: RaftCore;
  storage: MemoryStorage;
  stateMachine: TestStateMachine;
  options: RaftOptions;
  bootstrapVoters: NodeId[];
  bootstrapLearners: NodeId[];
  lastSoftState: string;
  /** What random() returns for this node: its election timeout is T + floor(r * T) ticks. */
  randomValue: number;
}

const encoder = new TextEncoder();

export class InteractionEnv {
  private readonly nodes = new Map<NodeId, EnvNode>();
  private queue: Message[] = [];
  /** Directed links that drop everything: "from->to". */
  private readonly cutLinks = new Set<string>();

  run(command: string): string {
    const [name, ...rest] = command.trim().split(/\s+/);
    const positional = rest.filter((a) => !a.includes('='));
    const named = new Map(rest.filter((a) => a.includes('=')).map((a) => a.split('=', 2) as [string, string]));
    const out: string[] = [];
    const ids = () => positional.map(Number);
    switch (name) {
      case 'add-nodes':
        this.addNodes(Number(positional[0]), named, out);
        break;
      case 'campaign':
        this.node(ids()[0]).core.campaign();
        break;
      case 'propose':
        out.push(formatResult(this.node(ids()[0]).core.propose(encoder.encode(positional[1]))));
        break;
      case 'propose-conf-change': {
        const change = { type: positional[1], nodeId: Number(positional[2]) } as ConfigChange;
        out.push(formatResult(this.node(ids()[0]).core.proposeConfigChange(change)));
        break;
      }
      case 'transfer-leadership':
        out.push(formatResult(this.node(ids()[0]).core.transferLeadership(ids()[1])));
        break;
      case 'tick':
        this.tick(ids()[0], positional[1] === undefined ? 1 : Number(positional[1]));
        break;
      case 'tick-election': {
        const node = this.node(ids()[0]);
        const t = node.options.electionTimeoutTicks;
        this.tick(ids()[0], t + Math.floor(node.randomValue * t));
        break;
      }
      case 'set-random':
        this.node(ids()[0]).randomValue = Number(positional[1]);
        break;
      case 'tick-heartbeat':
        this.tick(ids()[0], this.node(ids()[0]).options.heartbeatIntervalTicks);
        break;
      case 'process-ready':
        for (const id of ids()) this.processReady(id, out);
        break;
      case 'deliver-msgs':
        for (const id of ids()) this.deliver(id, out, false);
        break;
      case 'drop-msgs':
        for (const id of ids()) this.deliver(id, out, true);
        break;
      case 'stabilize':
        this.stabilize(positional.length > 0 ? ids() : [...this.nodes.keys()], out);
        break;
      case 'status':
        this.status(ids()[0], out);
        break;
      case 'raft-log':
        this.raftLog(ids()[0], out);
        break;
      case 'compact':
        this.compact(ids()[0], Number(positional[1]), out);
        break;
      case 'restart':
        this.restart(ids()[0]);
        break;
      case 'isolate':
        for (const other of this.nodes.keys()) {
          if (other === ids()[0]) continue;
          this.cutLinks.add(`${ids()[0]}->${other}`);
          this.cutLinks.add(`${other}->${ids()[0]}`);
        }
        break;
      case 'cut':
        this.cutLinks.add(`${ids()[0]}->${ids()[1]}`);
        this.cutLinks.add(`${ids()[1]}->${ids()[0]}`);
        break;
      case 'cut-one-way':
        this.cutLinks.add(`${ids()[0]}->${ids()[1]}`);
        break;
      case 'heal':
        this.cutLinks.clear();
        break;
      default:
        throw new Error(`unknown command ${name}`);
    }
    return out.length > 0 ? out.join('\n') : 'ok';
  }

  private addNodes(count: number, named: Map<string, string>, out: string[]): void {
    const first = this.nodes.size + 1;
    const newIds = Array.from({ length: count }, (_, i) => first + i);
    const list = (key: string, fallback: NodeId[]) => {
      const v = named.get(key);
      return v === undefined ? fallback : v === '' ? [] : v.split(',').map(Number);
    };
    const voters = list('voters', newIds);
    const learners = list('learners', []);
    for (const id of newIds) {
      const options: RaftOptions = {
        id,
        electionTimeoutTicks: Number(named.get('election') ?? 10),
        heartbeatIntervalTicks: Number(named.get('heartbeat') ?? 1),
        random: () => this.nodes.get(id)?.randomValue ?? 0,
        preVote: (named.get('prevote') ?? 'true') === 'true',
        checkQuorum: (named.get('checkquorum') ?? 'true') === 'true',
        maxEntriesPerAppend: Number(named.get('max-entries') ?? 64),
        maxInflightAppends: Number(named.get('max-inflight') ?? 16),
      };
      const storage = new MemoryStorage();
      const core = new RaftCore(options, storage.durable(), makeConfig(voters, learners));
      this.nodes.set(id, {
        core,
        storage,
        stateMachine: new TestStateMachine(),
        options,
        bootstrapVoters: voters,
        bootstrapLearners: learners,
        lastSoftState: '',
        randomValue: 0,
      });
      out.push(`node ${id}: ${formatConfig(makeConfig(voters, learners))}`);
    }
  }

  private node(id: NodeId): EnvNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  private tick(id: NodeId, count: number): void {
    for (let i = 0; i < count; i++) this.node(id).core.tick();
  }

  private processReady(id: NodeId, out: string[]): boolean {
    const node = this.node(id);
    if (!node.core.hasReady()) return false;
    const rd = node.core.ready();
    const soft = JSON.stringify(rd.softState);
    out.push(`> ${id} handling Ready`);
    for (const line of formatReady(rd, soft !== node.lastSoftState)) out.push(`  ${line}`);
    node.lastSoftState = soft;
    node.storage.persist(rd);
    this.queue.push(...rd.messages);
    if (rd.snapshot !== undefined) node.stateMachine.applySnapshot(rd.snapshot);
    for (const entry of rd.committedEntries) node.stateMachine.apply(entry);
    node.core.advance(rd);
    return true;
  }

  private deliver(id: NodeId, out: string[], drop: boolean): boolean {
    const mine = this.queue.filter((m) => m.to === id);
    if (mine.length === 0) return false;
    this.queue = this.queue.filter((m) => m.to !== id);
    const node = this.node(id);
    for (const m of mine) {
      if (drop || this.cutLinks.has(`${m.from}->${m.to}`)) {
        out.push(`dropped: ${formatMessage(m)}`);
        continue;
      }
      out.push(formatMessage(m));
      node.core.step(m);
    }
    return true;
  }

  private stabilize(ids: NodeId[], out: string[]): void {
    for (let round = 0; ; round++) {
      assert(round < 1000, 'stabilize converges');
      let progress = false;
      for (const id of ids) progress = this.processReady(id, out) || progress;
      for (const id of ids) {
        const mine = this.queue.filter((m) => m.to === id);
        if (mine.length === 0) continue;
        // Messages over cut links vanish quietly here; deliver-msgs shows them.
        const live = mine.filter((m) => !this.cutLinks.has(`${m.from}->${m.to}`));
        this.queue = this.queue.filter((m) => m.to !== id);
        if (live.length === 0) continue;
        out.push(`> ${id} receiving messages`);
        for (const m of live) {
          out.push(`  ${formatMessage(m)}`);
          this.node(id).core.step(m);
        }
        progress = true;
      }
      if (!progress) return;
    }
  }

  private status(id: NodeId, out: string[]): void {
    const s = this.node(id).core.status();
    out.push(
      `${s.id}: ${s.role} term=${s.term} vote=${s.votedFor ?? '-'} leader=${s.leaderId ?? '-'} ` +
        `log=[${s.firstIndex},${s.lastIndex}] commit=${s.committed} applied=${s.applied} ${formatConfig(s.config)}`,
    );
    if (s.progress !== undefined) {
      for (const [peer, p] of [...s.progress].sort((a, b) => a[0] - b[0])) {
        out.push(`  ${peer}: ${p.state} match=${p.match} next=${p.next}`);
      }
    }
    if (s.transferTarget !== undefined) out.push(`  transferring to ${s.transferTarget}`);
  }

  private raftLog(id: NodeId, out: string[]): void {
    const core = this.node(id).core;
    const s = core.status();
    const snapshot = core.currentSnapshot().metadata;
    if (snapshot.index > 0) out.push(`snapshot ${snapshot.index}@${snapshot.term}`);
    const entries = core.entries(s.firstIndex, s.lastIndex);
    out.push(entries.length > 0 ? formatEntries(entries) : 'log is empty');
  }

  private compact(id: NodeId, index: number, out: string[]): void {
    const node = this.node(id);
    // The test state machine can only snapshot what it has applied so far, at its applied index.
    assert(index === node.stateMachine.appliedIndex, `compact ${index} at the applied index ${node.stateMachine.appliedIndex}`);
    const data = node.stateMachine.snapshotData();
    if (node.core.compact(index, data)) {
      node.storage.compact(node.core.currentSnapshot());
      out.push(`compacted ${id} through ${index}`);
    } else {
      out.push('already compacted');
    }
  }

  private restart(id: NodeId): void {
    const node = this.node(id);
    const core = new RaftCore(node.options, node.storage.durable(), makeConfig(node.bootstrapVoters, node.bootstrapLearners));
    const stateMachine = new TestStateMachine();
    if (node.storage.snapshot !== undefined) stateMachine.applySnapshot(node.storage.snapshot);
    this.nodes.set(id, { ...node, core, stateMachine, lastSoftState: '' });
  }
}

function formatResult(result: ProposeResult): string {
  if (result.ok) return `ok index=${result.index} term=${result.term}`;
  return `rejected: ${result.reason} (${result.detail}) leader=${result.leaderId ?? '-'}`;
}
