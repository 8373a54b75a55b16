// Admin requests that change metadata: CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
// and the controller quorum's AddRaftVoter / RemoveRaftVoter / DescribeQuorum.
//
// Where they run: on the active controller (`decide*`, which the Controller service also calls).
// A node that is not the active controller forwards the client's request unchanged over the
// Controller service (KIP-590) and, before answering, waits until its own metadata has applied
// the offset that holds the change, so the client's next request to this node sees it.
import * as grpc from '@grpc/grpc-js';
import { KavkaError } from '../util/errors.js';
import type { CreateTopicRequest } from '../controller/index.js';
import type { CreateTopicsRequest__Output } from '../gen/kavka/v1/CreateTopicsRequest.js';
import type { CreateTopicsRequest } from '../gen/kavka/v1/CreateTopicsRequest.js';
import type { CreateTopicsResponse } from '../gen/kavka/v1/CreateTopicsResponse.js';
import type { DeleteTopicsRequest__Output } from '../gen/kavka/v1/DeleteTopicsRequest.js';
import type { DeleteTopicsResponse } from '../gen/kavka/v1/DeleteTopicsResponse.js';
import type { CreatePartitionsRequest__Output } from '../gen/kavka/v1/CreatePartitionsRequest.js';
import type { CreatePartitionsResponse } from '../gen/kavka/v1/CreatePartitionsResponse.js';
import type { AlterConfigsRequest__Output } from '../gen/kavka/v1/AlterConfigsRequest.js';
import type { AlterConfigsRequest } from '../gen/kavka/v1/AlterConfigsRequest.js';
import type { AlterConfigsResponse } from '../gen/kavka/v1/AlterConfigsResponse.js';
import type { AlterConfigsResult } from '../gen/kavka/v1/AlterConfigsResult.js';
import type { ReplicaAssignment__Output } from '../gen/kavka/v1/ReplicaAssignment.js';
import type { DescribeQuorumResponse } from '../gen/kavka/v1/DescribeQuorumResponse.js';
import type { ServerContext } from './context.js';
import { METADATA_OFFSET_HEADER, type ControllerMethod } from './controller-channel.js';

/** How long a forwarding node waits for its own metadata to include a forwarded change. */
const CATCH_UP_TIMEOUT_MS = 5000;

export interface Decided<Res> {
  response: Res;
  metadataOffset: number;
}

export function assignmentsOf(list: ReplicaAssignment__Output[]): Map<number, number[]> {
  const map = new Map<number, number[]>();
  for (const a of list) {
    if (map.has(a.partition)) throw new KavkaError('INVALID_REPLICA_ASSIGNMENT', `partition ${a.partition} is assigned twice`);
    map.set(a.partition, a.brokerIds);
  }
  return map;
}

export class AdminHandler {
  constructor(private readonly context: ServerContext) {}

  // ------------------------------------------------------------------ any node

  createTopics(request: CreateTopicsRequest__Output): Promise<CreateTopicsResponse> {
    // An absent optional field must stay absent on the wire (absent = the broker default).
    const wire: CreateTopicsRequest = {
      validateOnly: request.validateOnly,
      topics: request.topics.map((t) => ({
        name: t.name,
        configs: t.configs,
        assignments: t.assignments,
        ...(t._numPartitions === undefined ? {} : { numPartitions: t.numPartitions }),
        ...(t._replicationFactor === undefined ? {} : { replicationFactor: t.replicationFactor }),
      })),
    };
    return this.route('CreateTopics', wire, () => this.decideCreateTopics(request));
  }

  deleteTopics(request: DeleteTopicsRequest__Output): Promise<DeleteTopicsResponse> {
    return this.route('DeleteTopics', request, () => this.decideDeleteTopics(request));
  }

  createPartitions(request: CreatePartitionsRequest__Output): Promise<CreatePartitionsResponse> {
    return this.route('CreatePartitions', request, () => this.decideCreatePartitions(request));
  }

  alterConfigs(request: AlterConfigsRequest__Output): Promise<AlterConfigsResponse> {
    const wire: AlterConfigsRequest = {
      validateOnly: request.validateOnly,
      resources: request.resources.map((r) => ({
        type: r.type,
        name: r.name,
        configs: r.configs.map((c) => ({ name: c.name, op: c.op, ...(c._value === undefined ? {} : { value: c.value }) })),
      })),
    };
    return this.route('AlterConfigs', wire, () => this.decideAlterConfigs(request));
  }

  async describeQuorum(): Promise<DescribeQuorumResponse> {
    const { controller } = this.context;
    if (controller.isActive) return this.decideDescribeQuorum();
    return (await this.context.controllerChannel.call<DescribeQuorumResponse>('DescribeQuorum', {})).response;
  }

  addRaftVoter(voterId: number): Promise<object> {
    return this.quorumChange('AddRaftVoter', voterId, () => this.context.controller.addVoter(voterId));
  }

  removeRaftVoter(voterId: number): Promise<object> {
    return this.quorumChange('RemoveRaftVoter', voterId, () => this.context.controller.removeVoter(voterId));
  }

  /** Here when active; else (or when this controller hands off, as when it removes itself) at the controller. */
  private async quorumChange(method: ControllerMethod, voterId: number, local: () => Promise<void>): Promise<object> {
    if (this.context.controller.isActive) {
      try {
        await local();
        return {};
      } catch (error) {
        if (!(error instanceof KavkaError && error.code === 'NOT_CONTROLLER')) throw error;
      }
    }
    await this.context.controllerChannel.call(method, { voterId });
    return {};
  }

  // ------------------------------------------------------------------ the active controller

  async decideCreateTopics(request: CreateTopicsRequest__Output): Promise<Decided<CreateTopicsResponse>> {
    const requests: CreateTopicRequest[] = request.topics.map((t) => ({
      name: t.name,
      numPartitions: t._numPartitions === undefined ? undefined : t.numPartitions,
      replicationFactor: t._replicationFactor === undefined ? undefined : t.replicationFactor,
      configs: t.configs,
      assignments: assignmentsOf(t.assignments),
    }));
    const decided = await this.context.controller.createTopics(requests, request.validateOnly);
    return { response: { topics: decided.results }, metadataOffset: decided.metadataOffset };
  }

  async decideDeleteTopics(request: DeleteTopicsRequest__Output): Promise<Decided<DeleteTopicsResponse>> {
    const decided = await this.context.controller.deleteTopics(request.names);
    return { response: { topics: decided.results }, metadataOffset: decided.metadataOffset };
  }

  async decideCreatePartitions(request: CreatePartitionsRequest__Output): Promise<Decided<CreatePartitionsResponse>> {
    const decided = await this.context.controller.createPartitions(
      request.topics.map((t) => ({ name: t.name, count: t.count, assignments: assignmentsOf(t.assignments) })),
      request.validateOnly,
    );
    return { response: { topics: decided.results }, metadataOffset: decided.metadataOffset };
  }

  async decideAlterConfigs(request: AlterConfigsRequest__Output): Promise<Decided<AlterConfigsResponse>> {
    const results: AlterConfigsResult[] = [];
    let metadataOffset = this.context.controller.metadataOffset;
    for (const resource of request.resources) {
      if (resource.type !== 'TOPIC') {
        results.push({
          type: resource.type,
          name: resource.name,
          errorCode: 'INVALID_REQUEST',
          errorMessage: 'broker configs are static in this version: change server.properties (or KAVKA_* / --override) and restart the node',
        });
        continue;
      }
      const decided = await this.context.controller.alterTopicConfigs(
        [{ name: resource.name, changes: resource.configs.map((c) => ({ key: c.name, value: c.op === 'DELETE' ? null : (c.value ?? '') })) }],
        request.validateOnly,
      );
      const [result] = decided.results;
      metadataOffset = Math.max(metadataOffset, decided.metadataOffset);
      results.push({ type: resource.type, name: resource.name, errorCode: result.errorCode, errorMessage: result.errorMessage });
    }
    return { response: { results }, metadataOffset };
  }

  decideDescribeQuorum(): DescribeQuorumResponse {
    const q = this.context.controller.describeQuorum();
    const member = (m: { nodeId: number; logEndOffset: number; lag: number; directoryId: string; rejoining: boolean }) => ({
      replicaId: m.nodeId,
      logEndOffset: String(m.logEndOffset),
      lag: String(m.lag),
      directoryId: m.directoryId,
      rejoining: m.rejoining,
    });
    return {
      leaderId: q.leaderId,
      leaderEpoch: String(q.leaderEpoch),
      highWatermark: String(q.highWatermark),
      voters: q.voters.map(member),
      observers: q.observers.map(member),
    };
  }

  // ------------------------------------------------------------------ routing

  /**
   * Runs the decision here when this node is the active controller, else forwards `wire` to it.
   * Either way, returns once this node's partitions reflect the change.
   */
  private async route<Res>(method: ControllerMethod, wire: object, decide: () => Promise<Decided<Res>>): Promise<Res> {
    const { controller, controllerChannel, replicaManager } = this.context;
    let response: Res;
    let metadataOffset: number | undefined;
    if (controller.isActive) {
      ({ response, metadataOffset } = await decide());
    } else {
      ({ response, metadataOffset } = await controllerChannel.call<Res>(method, wire));
      if (metadataOffset !== undefined) await controller.waitForOffset(metadataOffset, CATCH_UP_TIMEOUT_MS);
    }
    await replicaManager.applyImage(controller.image);
    return response;
  }
}

/** Sends the metadata offset of a decision as a response header (see controller.proto). */
export function sendMetadataOffset(call: grpc.ServerUnaryCall<unknown, unknown>, metadataOffset: number): void {
  const metadata = new grpc.Metadata();
  metadata.set(METADATA_OFFSET_HEADER, String(metadataOffset));
  call.sendMetadata(metadata);
}
