// The chaos scenarios: each is a fault schedule generated from a seed, plus what it proves.
// A schedule names roles ("the leader of partition 1", "a follower of partition 0", "the active
// controller"), resolved to node ids when the step runs; the same seed gives the same schedule
// (steps, roles, partitions, durations), printed before the run.
import type { Prng } from '../util/prng.js';

export type Profile = 'short' | 'long';

/** Who a step hits, resolved when it runs. */
export type Role = 'leader' | 'follower' | 'controller' | 'random';

export type Step =
  | { kind: 'kill' | 'stop'; role: Role; partition: number; downMs: number }
  | { kind: 'pause'; role: Role; partition: number; pausedMs: number }
  | { kind: 'isolate'; role: Role; partition: number; ms: number }
  | { kind: 'cut-link'; partition: number; ms: number }
  | { kind: 'delay'; role: Role; partition: number; delayMs: number; ms: number }
  | { kind: 'rolling-restart' }
  | { kind: 'torn-tail' | 'bit-flip' | 'wipe'; role: Role; partition: number; downMs: number }
  | { kind: 'disk-full'; role: Role; partition: number; ms: number }
  | { kind: 'metadata-disk-full'; role: Role; partition: number }
  | { kind: 'quiet'; ms: number };

/** What a target must support for a step. */
export type Capability = 'signals' | 'links' | 'one-way-links' | 'delays' | 'data-dir' | 'storage-faults' | 'metadata-faults';

export function capabilityOf(step: Step): Capability | undefined {
  switch (step.kind) {
    case 'isolate':
      return 'links';
    case 'cut-link':
      return 'one-way-links';
    case 'delay':
      return 'delays';
    case 'torn-tail':
    case 'bit-flip':
    case 'wipe':
      return 'data-dir';
    case 'disk-full':
      return 'storage-faults';
    case 'metadata-disk-full':
      return 'metadata-faults';
    case 'quiet':
      return undefined;
    default:
      return 'signals';
  }
}

export interface Scenario {
  name: string;
  /** What a clean run of it proves, for the README and the report. */
  proves: string;
  /** Long profile only. */
  longOnly?: boolean;
  /**
   * In these profiles each node's log dir is a small tmpfs of its own (metadata.log.dir on the
   * ordinary disk), so a disk-full step fills a real file system. Needs root; without it the
   * steps fall back to ENOSPC injected through the storage interface, and say so.
   */
  smallDisks?: readonly Profile[];
  plan(random: Prng, profile: Profile, partitions: number): Step[];
}

const between = (random: Prng, low: number, high: number) => low + random.int(high - low + 1);

/** `count` steps from `make`, each followed by a quiet stretch so traffic flows between faults. */
function repeat(random: Prng, count: number, quietMs: [number, number], make: () => Step): Step[] {
  const steps: Step[] = [];
  for (let i = 0; i < count; i++) steps.push(make(), { kind: 'quiet', ms: between(random, quietMs[0], quietMs[1]) });
  return steps;
}

const times = (profile: Profile, short: number, long: number) => (profile === 'short' ? short : long);

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'leader-kill',
    proves: 'SIGKILL of a partition leader mid-append (a torn write at its tail) loses no acknowledged record; the old leader truncates what the new one never had and catches up; no offset holds two records',
    plan: (random, profile, partitions) => repeat(random, times(profile, 2, 8), [500, 1500], () => ({ kind: 'kill', role: 'leader', partition: random.int(partitions), downMs: between(random, 200, 1500) })),
  },
  {
    name: 'controller-kill',
    proves: 'SIGKILL of the active controller: a new one is elected, the partitions the dead node led move, nothing acknowledged is lost',
    plan: (random, profile) => repeat(random, times(profile, 2, 6), [800, 2000], () => ({ kind: 'kill', role: 'controller', partition: 0, downMs: between(random, 300, 2000) })),
  },
  {
    name: 'random-kill',
    proves: 'SIGKILL and restart of any node, one at a time: every acknowledged record survives, idempotent producers write no duplicate, order per partition holds',
    plan: (random, profile) => repeat(random, times(profile, 3, 12), [300, 1200], () => ({ kind: 'kill', role: 'random', partition: 0, downMs: between(random, 100, 2500) })),
  },
  {
    name: 'pause',
    proves: 'SIGSTOP of a leader past the broker session timeout, then SIGCONT: the paused node comes back late with a stale view, never acknowledges acks=all in its old epoch, and rejoins as a follower',
    plan: (random, profile, partitions) => repeat(random, times(profile, 1, 5), [500, 1500], () => ({ kind: 'pause', role: 'leader', partition: random.int(partitions), pausedMs: between(random, 2000, 4000) })),
  },
  {
    name: 'rolling-restart',
    proves: 'SIGTERM of each node in turn (controlled shutdown), the next only once under-replicated partitions are 0: producers see no loss and no duplicate',
    plan: (random, profile) => [...repeat(random, times(profile, 1, 2), [500, 1000], () => ({ kind: 'rolling-restart' }))],
  },
  {
    name: 'isolate',
    proves: 'A leader cut off from its peers and its clients (both directions, packets dropped) is replaced; what it took in alone is never acknowledged with acks=all and is truncated when the network heals',
    plan: (random, profile, partitions) => repeat(random, times(profile, 1, 5), [800, 1500], () => ({ kind: 'isolate', role: 'leader', partition: random.int(partitions), ms: between(random, 2500, 4500) })),
  },
  {
    name: 'link-faults',
    proves: 'One-way link cuts (a leader cannot reach one follower, or the reverse) and 50-200 ms delays on a node: the ISR shrinks and expands, acks=all stays correct, nothing is lost',
    plan: (random, profile, partitions) =>
      repeat(random, times(profile, 2, 8), [300, 1000], () =>
        random.chance(0.5)
          ? { kind: 'cut-link', partition: random.int(partitions), ms: between(random, 1500, 4000) }
          : { kind: 'delay', role: random.pick(['leader', 'follower', 'random'] as const), partition: random.int(partitions), delayMs: between(random, 50, 200), ms: between(random, 1500, 3000) },
      ),
  },
  {
    name: 'disk-full',
    proves: 'ENOSPC on one node: its log dir goes offline, it stops leading and following, the controller moves leaders and shrinks ISRs, nothing acknowledged is lost, and it rejoins through recovery once space returns (long profile: a real full tmpfs)',
    smallDisks: ['long'],
    plan: (random, profile, partitions) => repeat(random, times(profile, 1, 3), [1000, 2000], () => ({ kind: 'disk-full', role: random.pick(['leader', 'follower'] as const), partition: random.int(partitions), ms: between(random, 2000, 4000) })),
  },
  {
    name: 'metadata-disk-full',
    proves: 'ENOSPC under one node\'s metadata log: the node halts at once (exit code 3) rather than serve with metadata it can no longer follow; leaders move, nothing acknowledged is lost, and once its supervisor restarts it, it recovers and rejoins',
    plan: (random, profile, partitions) => repeat(random, times(profile, 1, 3), [1500, 2500], () => ({ kind: 'metadata-disk-full', role: random.pick(['controller', 'leader', 'follower'] as const), partition: random.int(partitions) })),
  },
  {
    name: 'torn-segment',
    proves: 'A follower killed and restarted with its active segment cut mid-batch: recovery truncates to the last whole batch, the replica re-fetches, replicas end byte-identical',
    plan: (random, profile, partitions) => repeat(random, times(profile, 1, 4), [800, 1500], () => ({ kind: 'torn-tail', role: 'follower', partition: random.int(partitions), downMs: 0 })),
  },
  {
    name: 'bit-flip',
    proves: 'A bit flipped in a follower\'s sealed segment while it is down: the CRC catches it, the corrupt bytes are never served, the replica re-fetches and ends byte-identical',
    // Traffic first, so the follower has sealed segments.
    plan: (random, profile, partitions) => [{ kind: 'quiet', ms: 3000 }, ...repeat(random, times(profile, 1, 3), [1000, 2000], () => ({ kind: 'bit-flip' as const, role: 'follower' as const, partition: random.int(partitions), downMs: 0 }))],
  },
  {
    name: 'wipe',
    proves: 'A node restarted with an empty data dir under the same id does not vote or lead as if it had the data; it re-fetches everything and nothing acknowledged is lost',
    plan: (random, profile) => repeat(random, times(profile, 1, 2), [1500, 2500], () => ({ kind: 'wipe', role: 'random', partition: 0, downMs: between(random, 200, 1000) })),
  },
  {
    name: 'mixed',
    proves: 'A random mix of every fault above, one at a time, for the length of the run',
    longOnly: true,
    plan: (random, profile, partitions) => {
      const pool: (() => Step)[] = [
        () => ({ kind: 'kill', role: random.pick(['leader', 'controller', 'random'] as const), partition: random.int(partitions), downMs: between(random, 100, 2500) }),
        () => ({ kind: 'stop', role: 'random', partition: 0, downMs: between(random, 100, 1500) }),
        () => ({ kind: 'pause', role: random.pick(['leader', 'random'] as const), partition: random.int(partitions), pausedMs: between(random, 500, 4000) }),
        () => ({ kind: 'isolate', role: random.pick(['leader', 'follower'] as const), partition: random.int(partitions), ms: between(random, 1000, 4000) }),
        () => ({ kind: 'cut-link', partition: random.int(partitions), ms: between(random, 1000, 3000) }),
        () => ({ kind: 'delay', role: 'random', partition: 0, delayMs: between(random, 20, 200), ms: between(random, 1000, 3000) }),
        () => ({ kind: 'torn-tail', role: 'follower', partition: random.int(partitions), downMs: 0 }),
        () => ({ kind: 'bit-flip', role: 'follower', partition: random.int(partitions), downMs: 0 }),
        () => ({ kind: 'disk-full', role: 'random', partition: 0, ms: between(random, 1500, 3000) }),
        () => ({ kind: 'metadata-disk-full', role: 'random', partition: 0 }),
      ];
      return repeat(random, times(profile, 6, 30), [200, 1000], () => random.pick(pool)());
    },
  },
];

export function describeStep(step: Step): string {
  const who = 'role' in step ? (step.role === 'leader' || step.role === 'follower' ? `${step.role} of p${step.partition}` : step.role === 'controller' ? 'the controller' : 'a random node') : '';
  switch (step.kind) {
    case 'kill':
    case 'stop':
      return `${step.kind === 'kill' ? 'SIGKILL' : 'SIGTERM'} ${who}, restart after ${step.downMs} ms`;
    case 'pause':
      return `SIGSTOP ${who} for ${step.pausedMs} ms`;
    case 'isolate':
      return `isolate ${who} for ${step.ms} ms`;
    case 'cut-link':
      return `cut one direction between the leader of p${step.partition} and a follower for ${step.ms} ms`;
    case 'delay':
      return `delay ${who}'s links by ${step.delayMs} ms for ${step.ms} ms`;
    case 'rolling-restart':
      return 'rolling restart (SIGTERM each node, wait for under-replicated = 0)';
    case 'torn-tail':
      return `SIGKILL ${who}, cut its active segment mid-batch, restart`;
    case 'bit-flip':
      return `SIGKILL ${who}, flip a bit in a sealed segment, restart`;
    case 'wipe':
      return `SIGKILL ${who}, delete its data dir, restart after ${step.downMs} ms, wait until it is a voter again`;
    case 'disk-full':
      return `ENOSPC on ${who}'s log dir for ${step.ms} ms`;
    case 'metadata-disk-full':
      return `ENOSPC on ${who}'s metadata log until it halts; its supervisor restarts it`;
    case 'quiet':
      return `no fault for ${step.ms} ms`;
  }
}
