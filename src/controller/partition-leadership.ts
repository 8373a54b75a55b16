// The active controller's decisions about partition leaders and ISRs, as pure functions of the
// image: which partitions need a new leader after brokers are fenced or unfenced, moving
// leadership back to the preferred replica, and AlterPartition requests from partition leaders.
// Each returns PartitionChange records; replay bumps the epochs (metadata-image.ts).
import { KavkaError, type ErrorName } from '../util/errors.js';
import type { MetadataImage, PartitionImage, TopicImage } from './metadata-image.js';
import type { PartitionChangeRecord } from './metadata-records.js';

/**
 * Topic config: may a replica outside the ISR become leader when no ISR member is unfenced?
 * The topic's value wins; without one, the broker default (LeadershipOptions) applies.
 */
export const UNCLEAN_LEADER_ELECTION_ENABLE = 'unclean.leader.election.enable';

export interface LeadershipOptions {
  /**
   * Remove fenced brokers from ISRs, as Kafka's KRaft controller does. The last ISR member is
   * never removed: an ISR of one fenced broker keeps the partition offline (leader -1) until that
   * broker, which holds every acknowledged record, comes back. Emptying the ISR would leave only
   * an unclean election to recover (the reasoning behind KIP-966's eligible leader replicas).
   */
  shrinkIsrOnFence: boolean;
  /** The broker default of unclean.leader.election.enable, for topics without their own. */
  uncleanLeaderElectionDefault?: boolean;
}

export const DEFAULT_LEADERSHIP_OPTIONS: LeadershipOptions = { shrinkIsrOnFence: true };

export function uncleanLeaderElectionEnabled(topic: TopicImage, brokerDefault = false): boolean {
  const value = topic.configs.get(UNCLEAN_LEADER_ELECTION_ENABLE);
  return value === undefined ? brokerDefault : value.trim().toLowerCase() === 'true';
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/** The record that moves partition p to (leader, isr), or undefined when nothing changes. */
function changeTo(topic: string, p: PartitionImage, leader: number, isr: readonly number[]): PartitionChangeRecord | undefined {
  const leaderChanged = leader !== p.leader;
  const isrChanged = !sameMembers(isr, p.isr);
  if (!leaderChanged && !isrChanged) return undefined;
  return {
    type: 'PartitionChange',
    topic,
    partition: p.partition,
    ...(leaderChanged ? { leader } : {}),
    ...(isrChanged ? { isr: [...isr] } : {}),
  };
}

/** The member an ISR keeps when every member is fenced: the leader if in it, else the first. */
function lastIsrMember(p: PartitionImage): number {
  return p.isr.includes(p.leader) ? p.leader : p.isr[0];
}

/**
 * What partition p needs given which brokers are unfenced now: the leader stays while it is
 * unfenced and in the ISR; otherwise the first replica (replica order) that is unfenced and in
 * the ISR leads; with none, the first unfenced replica only if unclean election is enabled
 * (its ISR becomes just itself, as in Kafka), else the partition goes offline (leader -1).
 */
export function partitionChangeAfterBrokerChange(image: MetadataImage, topic: TopicImage, p: PartitionImage, options: LeadershipOptions): PartitionChangeRecord | undefined {
  const live = (id: number) => image.isUnfenced(id);
  let isr: readonly number[] = p.isr;
  if (options.shrinkIsrOnFence && isr.length > 0) {
    const kept = isr.filter(live);
    isr = kept.length > 0 ? kept : [lastIsrMember(p)];
  }
  let leader = live(p.leader) && isr.includes(p.leader) ? p.leader : (p.replicas.find((id) => live(id) && isr.includes(id)) ?? -1);
  if (leader === -1 && uncleanLeaderElectionEnabled(topic, options.uncleanLeaderElectionDefault)) {
    const unclean = p.replicas.find(live);
    if (unclean !== undefined) {
      leader = unclean;
      isr = [unclean];
    }
  }
  return changeTo(topic.name, p, leader, isr);
}

/**
 * A broker registered with a re-created log dir (Kavka issue 6): it holds none of its partitions'
 * data, so it leaves every ISR it is in, and leads nothing. Where it was the last ISR member the
 * ISR becomes empty and the partition goes offline (leader -1): no replica is known to hold every
 * acknowledged record any more, so only an unclean election (unclean.leader.election.enable,
 * which electLeaders applies next) may bring it back, from a replica that kept its data. The
 * re-created replica itself rejoins the ISR only through its leader's AlterPartition, once it has
 * re-fetched the log (replica-manager's catch-up rule).
 */
export function leaveIsrsAfterDataLoss(image: MetadataImage, brokerId: number): { records: PartitionChangeRecord[]; offline: string[] } {
  const records: PartitionChangeRecord[] = [];
  const offline: string[] = [];
  for (const topic of image.topics.values()) {
    for (const p of topic.partitions) {
      if (!p.isr.includes(brokerId)) continue;
      const isr = p.isr.filter((id) => id !== brokerId);
      const leader = p.leader === brokerId || isr.length === 0 ? -1 : p.leader;
      if (isr.length === 0) offline.push(`${topic.name}-${p.partition}`);
      const change = changeTo(topic.name, p, leader, isr);
      if (change !== undefined) records.push(change);
    }
  }
  return { records, offline };
}

/** Every partition's change after brokers were fenced or unfenced (apply the broker records first). */
export function electLeaders(image: MetadataImage, options: LeadershipOptions = DEFAULT_LEADERSHIP_OPTIONS): PartitionChangeRecord[] {
  const records: PartitionChangeRecord[] = [];
  for (const topic of image.topics.values()) {
    for (const p of topic.partitions) {
      const change = partitionChangeAfterBrokerChange(image, topic, p, options);
      if (change !== undefined) records.push(change);
    }
  }
  return records;
}

/**
 * Preferred-replica election (auto.leader.rebalance.enable): leadership moves back to
 * replicas[0] wherever it is unfenced and in the ISR but does not lead.
 */
export function electPreferredLeaders(image: MetadataImage): PartitionChangeRecord[] {
  const records: PartitionChangeRecord[] = [];
  for (const topic of image.topics.values()) {
    for (const p of topic.partitions) {
      const preferred = p.replicas[0];
      if (preferred === p.leader || !image.isUnfenced(preferred) || !p.isr.includes(preferred)) continue;
      records.push({ type: 'PartitionChange', topic: topic.name, partition: p.partition, leader: preferred });
    }
  }
  return records;
}

/** AlterPartition (KIP-497): a partition leader asks to change the ISR. */
export interface AlterPartitionRequest {
  topic: string;
  /** When given, must be the topic's current id (UNKNOWN_TOPIC_ID otherwise). */
  topicId?: string;
  partition: number;
  leaderId: number;
  leaderEpoch: number;
  partitionEpoch: number;
  newIsr: number[];
}

export interface AlterPartitionResponse {
  errorCode: ErrorName;
  errorMessage: string;
  /** The partition's state after the change (or now, on error; -1 / [] when unknown). */
  leader: number;
  leaderEpoch: number;
  isr: number[];
  partitionEpoch: number;
}

function validateAlterPartition(image: MetadataImage, request: AlterPartitionRequest, p: PartitionImage): void {
  const tp = `${request.topic}-${request.partition}`;
  if (request.leaderEpoch !== p.leaderEpoch) {
    throw new KavkaError('FENCED_LEADER_EPOCH', `${tp}: leader epoch ${request.leaderEpoch} is not the current ${p.leaderEpoch}`);
  }
  if (request.leaderId !== p.leader) {
    throw new KavkaError('NOT_LEADER_OR_FOLLOWER', `${tp}: broker ${request.leaderId} is not the leader (${p.leader})`, { leaderHint: p.leader });
  }
  if (request.partitionEpoch !== p.partitionEpoch) {
    throw new KavkaError('INVALID_UPDATE_VERSION', `${tp}: partition epoch ${request.partitionEpoch} is not the current ${p.partitionEpoch}`);
  }
  const isr = request.newIsr;
  if (new Set(isr).size !== isr.length) throw new KavkaError('INVALID_REQUEST', `${tp}: new ISR ${isr.join(',')} names a broker twice`);
  for (const id of isr) {
    if (!p.replicas.includes(id)) throw new KavkaError('INVALID_REQUEST', `${tp}: new ISR member ${id} is not a replica (${p.replicas.join(',')})`);
    // A fenced broker may stay in the ISR (the leader shrinks it later), never join it.
    if (!p.isr.includes(id) && !image.isUnfenced(id)) throw new KavkaError('INVALID_REQUEST', `${tp}: broker ${id} is fenced and cannot join the ISR`);
  }
  if (!isr.includes(p.leader)) throw new KavkaError('INVALID_REQUEST', `${tp}: new ISR ${isr.join(',')} leaves out the leader ${p.leader}`);
}

export function alterPartition(image: MetadataImage, request: AlterPartitionRequest): { records: PartitionChangeRecord[]; response: AlterPartitionResponse } {
  const topic = image.topic(request.topic);
  const p = topic?.partitions[request.partition] as PartitionImage | undefined;
  if (topic === undefined || p === undefined) {
    const errorMessage = `${request.topic}-${request.partition} does not exist`;
    return { records: [], response: { errorCode: 'UNKNOWN_TOPIC_OR_PARTITION', errorMessage, leader: -1, leaderEpoch: -1, isr: [], partitionEpoch: -1 } };
  }
  const current = { leader: p.leader, leaderEpoch: p.leaderEpoch, isr: [...p.isr], partitionEpoch: p.partitionEpoch };
  try {
    if (request.topicId !== undefined && request.topicId !== '' && request.topicId !== topic.topicId) {
      throw new KavkaError('UNKNOWN_TOPIC_ID', `${request.topic} is now topic id ${topic.topicId}, not ${request.topicId} (it was deleted and re-created)`);
    }
    validateAlterPartition(image, request, p);
  } catch (error) {
    if (!(error instanceof KavkaError)) throw error;
    return { records: [], response: { errorCode: error.code, errorMessage: error.message, ...current } };
  }
  const change = changeTo(topic.name, p, p.leader, request.newIsr);
  if (change === undefined) return { records: [], response: { errorCode: 'NONE', errorMessage: '', ...current } };
  return {
    records: [change],
    response: { errorCode: 'NONE', errorMessage: '', ...current, isr: [...request.newIsr], partitionEpoch: p.partitionEpoch + 1 },
  };
}
