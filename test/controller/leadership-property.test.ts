// Seeded property test of the controller's leadership decisions: random fence / unfence /
// heartbeat / restart / AlterPartition / preferred-election sequences over a random cluster,
// with the partition invariants checked after every replayed record and every batch. A failing
// run names its seed; PROPERTY_SEED=<n> replays just that one.
import { describe, expect, it } from 'vitest';
import {
  alterPartition,
  electPreferredLeaders,
  fenceStaleBrokers,
  handleHeartbeat,
  placeReplicas,
  uncleanLeaderElectionEnabled,
  withLeadershipChanges,
  type LeadershipOptions,
  type MetadataImage,
} from '../../src/controller/index.js';
import type { MetadataRecord } from '../../src/controller/metadata-records.js';
import { KavkaError } from '../../src/util/errors.js';
import { Prng } from '../raft/prng.js';
import { cluster, incarnation, type FixtureTopic } from './cluster-fixture.js';

const SEEDS = process.env.PROPERTY_SEED === undefined ? Array.from({ length: 150 }, (_, i) => i + 1) : [Number(process.env.PROPERTY_SEED)];
const STEPS = 150;
const SESSION_MS = 9000;

function randomCluster(prng: Prng): MetadataImage {
  const brokers = Array.from({ length: 2 + prng.int(5) }, (_, i) => i + 1);
  const topics: FixtureTopic[] = Array.from({ length: 1 + prng.int(3) }, (_, t) => ({
    name: `t${t}`,
    replicas: placeReplicas(1 + prng.int(4), 1 + prng.int(Math.min(3, brokers.length)), brokers, prng.int(brokers.length)),
    configs: { 'unclean.leader.election.enable': String(prng.chance(0.3)) },
  }));
  return cluster(brokers, topics);
}

function randomSubset(prng: Prng, items: readonly number[]): number[] {
  return items.filter(() => prng.chance(0.6));
}

class Checker {
  constructor(private readonly seed: number) {}
  step = 0;

  fail(message: string): never {
    throw new Error(`seed ${this.seed} step ${this.step}: ${message} (replay with PROPERTY_SEED=${this.seed})`);
  }

  /** Replays records one at a time, checking the invariants after each. */
  apply(image: MetadataImage, records: readonly MetadataRecord[]): MetadataImage {
    let current = image;
    for (const record of records) {
      const next = current.replay(record);
      this.checkTransition(current, next);
      current = next;
    }
    this.checkLeadersUnfenced(current);
    return current;
  }

  private checkTransition(before: MetadataImage, after: MetadataImage): void {
    for (const topic of after.topics.values()) {
      for (const p of topic.partitions) {
        const where = `${topic.name}-${p.partition}`;
        if (p.isr.length === 0) this.fail(`${where}: empty ISR`);
        if (!p.isr.every((id) => p.replicas.includes(id))) this.fail(`${where}: ISR ${p.isr.join(',')} not within replicas ${p.replicas.join(',')}`);
        if (p.leader !== -1 && !p.isr.includes(p.leader)) this.fail(`${where}: leader ${p.leader} not in ISR ${p.isr.join(',')}`);
        const old = before.topic(topic.name)?.partitions[p.partition];
        if (old === undefined) continue;
        if (p.leaderEpoch < old.leaderEpoch || p.partitionEpoch < old.partitionEpoch) this.fail(`${where}: an epoch went backward`);
        const newLeader = p.leader !== old.leader && p.leader !== -1;
        if (newLeader && !old.isr.includes(p.leader) && !uncleanLeaderElectionEnabled(topic)) {
          this.fail(`${where}: unclean election of ${p.leader} from ISR ${old.isr.join(',')} while disabled`);
        }
      }
    }
  }

  private checkLeadersUnfenced(image: MetadataImage): void {
    for (const topic of image.topics.values()) {
      for (const p of topic.partitions) {
        if (p.leader !== -1 && !image.isUnfenced(p.leader)) this.fail(`${topic.name}-${p.partition}: fenced broker ${p.leader} leads after a batch`);
      }
    }
  }
}

function randomStep(prng: Prng, image: MetadataImage, state: { nowMs: number; last: Map<number, number>; incarnations: Map<number, string> }, options: LeadershipOptions): MetadataRecord[] {
  const brokerIds = [...image.brokers.keys()];
  const brokerId = prng.pick(brokerIds);
  const roll = prng.next();
  if (roll < 0.35) {
    const stale = prng.chance(0.05);
    const request = { brokerId, incarnationId: stale ? 'stale' : (state.incarnations.get(brokerId) ?? ''), wantFence: prng.chance(0.1), wantShutdown: prng.chance(0.05) };
    try {
      const { records, heartbeat } = handleHeartbeat(image, request, state.nowMs, options);
      state.last.set(heartbeat.brokerId, heartbeat.atMs);
      return records;
    } catch (error) {
      expect(stale && error instanceof KavkaError && error.code === 'STALE_BROKER_EPOCH').toBe(true);
      return [];
    }
  }
  if (roll < 0.5) {
    state.nowMs += prng.int(6000);
    return fenceStaleBrokers(image, state.last, state.nowMs, SESSION_MS, options);
  }
  if (roll < 0.55) {
    const incarnationId = `${incarnation(brokerId)}-${state.nowMs}-${prng.int(1000)}`;
    state.incarnations.set(brokerId, incarnationId);
    return withLeadershipChanges(image, [{ type: 'RegisterBroker', nodeId: brokerId, endpoints: [], incarnationId }], options);
  }
  if (roll < 0.6) return electPreferredLeaders(image);
  const topic = prng.pick([...image.topics.values()]);
  const p = prng.pick(topic.partitions);
  const newIsr = randomSubset(prng, p.replicas);
  if (p.leader !== -1 && !newIsr.includes(p.leader) && prng.chance(0.9)) newIsr.unshift(p.leader);
  const { records, response } = alterPartition(image, {
    topic: topic.name,
    partition: p.partition,
    leaderId: prng.chance(0.9) ? p.leader : prng.pick(p.replicas),
    leaderEpoch: p.leaderEpoch - (prng.chance(0.1) ? 1 : 0),
    partitionEpoch: p.partitionEpoch - (prng.chance(0.1) ? 1 : 0),
    newIsr,
  });
  expect(response.errorCode === 'NONE' || records.length === 0).toBe(true);
  return records;
}

describe('leadership decisions keep the partition invariants (seeded property test)', () => {
  it(`holds for ${SEEDS.length} seeds of ${STEPS} random steps: leader in ISR or -1, ISR within replicas and never empty, epochs never decrease, no unclean election unless enabled`, () => {
    for (const seed of SEEDS) {
      const prng = new Prng(seed);
      const checker = new Checker(seed);
      const options: LeadershipOptions = { shrinkIsrOnFence: prng.chance(0.7) };
      let image = randomCluster(prng);
      const state = { nowMs: 0, last: new Map([...image.brokers.keys()].map((id) => [id, 0])), incarnations: new Map([...image.brokers.keys()].map((id) => [id, incarnation(id)])) };
      let leaderChanges = 0;
      for (checker.step = 0; checker.step < STEPS; checker.step++) {
        const records = randomStep(prng, image, state, options);
        leaderChanges += records.filter((r) => r.type === 'PartitionChange' && r.leader !== undefined).length;
        image = checker.apply(image, records);
      }
      // The run must exercise elections, not just heartbeats.
      if (leaderChanges === 0) checker.fail('no leader changed in the whole run');
    }
  });
});
