// Reading a chaos target back after its faults are healed, over its public interfaces only: the
// CLIENT gRPC listener (Metadata, Fetch) and each node's admin /metrics. Works the same for
// processes on 127.0.0.1 and for the docker-compose cluster's published ports.
//
// waitConverged: every running node names the same leader and epoch for the partition, its ISR is
// every replica, and every replica's log end offset and high watermark equal the leader's log end.
// readFinal: the whole partition below the HW from its leader, as a final observation.
// compareReplicaFiles: replicas' bytes over [max log start, min HW), when the target can read a
// replica's segment files (the process target).
import * as grpc from '@grpc/grpc-js';
import { loadKavkaGrpc } from '../proto/load.js';
import type { KavkaClient } from '../gen/kavka/v1/Kavka.js';
import type { MetadataResponse__Output } from '../gen/kavka/v1/MetadataResponse.js';
import type { FetchResponse__Output } from '../gen/kavka/v1/FetchResponse.js';
import type { DescribeQuorumResponse__Output } from '../gen/kavka/v1/DescribeQuorumResponse.js';
import type { FetchPartitionResponse__Output } from '../gen/kavka/v1/FetchPartitionResponse.js';
import { scanBatches } from '../codec/record-batch.js';
import { compareReplicas, decodeRecords, partitionKey, unary, type History, type Observation, type ReadRecord, type Violation } from './history.js';
import type { ChaosTarget } from './target.js';

export interface PartitionView {
  leader: number;
  leaderEpoch: number;
  isr: number[];
  replicas: number[];
}

export interface ReplicaPosition {
  node: number;
  logStartOffset: bigint;
  logEndOffset: bigint;
  highWatermark: bigint;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Plain gRPC clients to each node's CLIENT address, for the harness's own queries. */
export class ReadbackClients {
  private readonly clients = new Map<string, KavkaClient>();
  private readonly grpcPackage = loadKavkaGrpc();

  constructor(private readonly target: ChaosTarget) {}

  client(id: number): KavkaClient {
    const address = this.target.bootstrap()[this.target.nodeIds.indexOf(id)];
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new this.grpcPackage.kavka.v1.Kavka(address, grpc.credentials.createInsecure());
      this.clients.set(address, client);
    }
    return client;
  }

  /** The partition as node `via` sees it; undefined when it does not answer. */
  async view(via: number, topic: string, partition: number): Promise<PartitionView | undefined> {
    const answer = await unary<MetadataResponse__Output>(this.client(via), 'Metadata', { topics: [topic] }, 2_000);
    if (!answer.ok) return undefined;
    const p = answer.value.topics.find((t) => t.name === topic)?.partitions.find((x) => x.partition === partition);
    return p === undefined ? undefined : { leader: p.leaderId, leaderEpoch: p.leaderEpoch, isr: [...p.isr], replicas: [...p.replicas] };
  }

  /** The active controller as node `via` names it (-1 when it knows none or does not answer). */
  async controller(via: number): Promise<number> {
    const answer = await unary<MetadataResponse__Output>(this.client(via), 'Metadata', { topics: [], brokersOnly: true }, 2_000);
    return answer.ok ? answer.value.controllerId : -1;
  }

  /** The metadata quorum's voters as node `via` describes them; undefined when it does not answer. */
  async voters(via: number): Promise<number[] | undefined> {
    const answer = await unary<DescribeQuorumResponse__Output>(this.client(via), 'DescribeQuorum', {}, 2_000);
    return answer.ok ? answer.value.voters.map((v) => v.replicaId) : undefined;
  }

  async fetch(node: number, topic: string, partition: number, fetchOffset: bigint): Promise<FetchPartitionResponse__Output> {
    const answer = await unary<FetchResponse__Output>(
      this.client(node),
      'Fetch',
      { maxWaitMs: 0, minBytes: 0, maxBytes: 4 << 20, topics: [{ name: topic, partitions: [{ partition, fetchOffset: fetchOffset.toString(), partitionMaxBytes: 4 << 20 }] }] },
      10_000,
    );
    if (!answer.ok) throw new Error(`Fetch of ${partitionKey(topic, partition)} from node ${node}: ${answer.details}`);
    const p = answer.value.topics[0]?.partitions[0];
    if (p === undefined) throw new Error(`Fetch from node ${node} names no partition`);
    return p;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** Per-partition gauges of one node's /metrics for `topic`: log start, log end, high watermark. */
export async function replicaPositions(target: ChaosTarget, node: number, topic: string): Promise<Map<number, ReplicaPosition>> {
  const text = await fetch(`${target.adminUrl(node)}/metrics`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.text());
  const positions = new Map<number, ReplicaPosition>();
  const line = /^kavka_partition_(log_start_offset|log_end_offset|high_watermark)\{([^}]*)\} (\S+)$/;
  for (const row of text.split('\n')) {
    const m = line.exec(row);
    if (m === null) continue;
    const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (labels.topic !== topic) continue;
    const partition = Number(labels.partition);
    const position = positions.get(partition) ?? { node, logStartOffset: -1n, logEndOffset: -1n, highWatermark: -1n };
    const value = BigInt(Math.round(Number(m[3])));
    if (m[1] === 'log_start_offset') position.logStartOffset = value;
    else if (m[1] === 'log_end_offset') position.logEndOffset = value;
    else position.highWatermark = value;
    positions.set(partition, position);
  }
  return positions;
}

/**
 * Waits until the partition has one leader every running node agrees on, a full ISR of running
 * replicas, and every replica's log end and HW at the leader's log end. Returns the view, or
 * throws naming what it last saw.
 */
export async function waitConverged(target: ChaosTarget, clients: ReadbackClients, topic: string, partition: number, timeoutMs: number): Promise<PartitionView> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    const running: number[] = [];
    for (const id of target.nodeIds) if (await target.isRunning(id)) running.push(id);
    const views = await Promise.all(running.map((id) => clients.view(id, topic, partition).catch(() => undefined)));
    const [view] = views;
    if (view === undefined || views.some((v) => v === undefined)) last = 'a node did not answer Metadata';
    else if (view.leader < 0) last = 'no leader';
    else if (views.some((v) => v?.leader !== view.leader || v.leaderEpoch !== view.leaderEpoch)) last = `nodes disagree on the leader: ${views.map((v, i) => `${running[i]}:${v?.leader}/${v?.leaderEpoch}`).join(' ')}`;
    else if ([...view.isr].sort().join() !== [...view.replicas].sort().join()) last = `ISR ${view.isr.join(',')} of replicas ${view.replicas.join(',')}`;
    else if (view.replicas.some((id) => !running.includes(id))) last = 'a replica is not running';
    else {
      const positions = await Promise.all(view.replicas.map((id) => replicaPositions(target, id, topic).then((m) => m.get(partition)).catch(() => undefined)));
      const end = positions[view.replicas.indexOf(view.leader)]?.logEndOffset;
      if (end === undefined || positions.some((p) => p === undefined || p.logEndOffset !== end || p.highWatermark !== end)) {
        last = `replicas not caught up: ${positions.map((p, i) => `${view.replicas[i]} end ${p?.logEndOffset} hw ${p?.highWatermark}`).join(', ')}`;
      } else return view;
    }
    if (Date.now() > deadline) throw new Error(`${partitionKey(topic, partition)} did not converge within ${timeoutMs} ms: ${last}`);
    await sleep(100);
  }
}

/** Reads the whole partition below the HW from `leader` and records it as a final observation. */
export async function readFinal(clients: ReadbackClients, history: History, leader: number, topic: string, partition: number): Promise<Observation> {
  let answer = await clients.fetch(leader, topic, partition, 0n);
  if (answer.errorCode === 'OFFSET_OUT_OF_RANGE') answer = await clients.fetch(leader, topic, partition, BigInt(answer.logStartOffset));
  if (answer.errorCode !== 'NONE') throw new Error(`Fetch of ${partitionKey(topic, partition)} from leader ${leader}: ${answer.errorCode} ${answer.errorMessage}`);
  const from = BigInt(answer.logStartOffset);
  const highWatermark = BigInt(answer.highWatermark);
  const records: ReadRecord[] = [];
  let offset = from;
  for (let i = 0; offset < highWatermark; i++) {
    if (i > 0) answer = await clients.fetch(leader, topic, partition, offset);
    if (answer.errorCode !== 'NONE') throw new Error(`Fetch of ${partitionKey(topic, partition)} at ${offset} from leader ${leader}: ${answer.errorCode} ${answer.errorMessage}`);
    const got = decodeRecords(answer.batches, offset, highWatermark);
    if (got.length === 0 || i > 1_000_000) throw new Error(`Fetch of ${partitionKey(topic, partition)} from leader ${leader} returned nothing at ${offset} below the HW ${highWatermark}`);
    records.push(...got);
    offset = got[got.length - 1].offset + 1n;
  }
  return history.observe({ source: `leader ${leader} (final read)`, topic, partition, from, to: highWatermark, records, final: true });
}

/** Whole batches of `bytes` (a replica's segments back to back) with offsets in [from, to). */
function batchesIn(bytes: Buffer, from: bigint, to: bigint): Buffer {
  const scan = scanBatches(bytes, { verifyCrc: false });
  const parts: Buffer[] = [];
  for (const { header, position, size } of scan.batches) {
    const last = header.baseOffset + BigInt(header.lastOffsetDelta);
    if (header.baseOffset >= from && last < to) parts.push(bytes.subarray(position, position + size));
  }
  return Buffer.concat(parts);
}

/**
 * Compares the replicas' segment bytes over [max log start, min HW) (all converged, so the HW is
 * every replica's log end) and records each replica's records as a final observation.
 */
export async function compareReplicaFiles(target: ChaosTarget & { replicaBytes(id: number, topic: string, partition: number): Promise<Buffer> }, history: History, topic: string, partition: number, positions: readonly ReplicaPosition[]): Promise<Violation[]> {
  const files = new Map<number, Buffer>();
  for (const p of positions) files.set(p.node, await target.replicaBytes(p.node, topic, partition));
  return compareReplicas(
    history,
    topic,
    partition,
    positions.map((p) => ({ ...p, read: (from: bigint, to: bigint) => Promise.resolve(batchesIn(files.get(p.node) ?? Buffer.alloc(0), from, to)) })),
  );
}
