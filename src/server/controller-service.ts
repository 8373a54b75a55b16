// gRPC adapters for kavka.v1.Controller (proto/kavka/v1/controller.proto), served on the
// controller listener. Every call is answered by this node's QuorumController, which fails with
// NOT_CONTROLLER (and the leader hint) unless this node is the active controller.
import { KavkaError } from '../util/errors.js';
import type { ControllerHandlers } from '../gen/kavka/v1/Controller.js';
import type { ServerContext } from './context.js';
import { unary } from './request-guard.js';
import { sendMetadataOffset, type AdminHandler, type Decided } from './admin-handler.js';
import type * as grpc from '@grpc/grpc-js';

export class ControllerService {
  constructor(
    private readonly context: ServerContext,
    private readonly admin: AdminHandler,
  ) {}

  handlers(): ControllerHandlers {
    const { logger, controller } = this.context;
    const forwarded = <Req, Res>(method: string, decide: (request: Req) => Promise<Decided<Res>>): grpc.handleUnaryCall<Req, Res> =>
      unary<Req, Res>(logger, `Controller.${method}`, async (request, call) => {
        const { response, metadataOffset } = await decide(request);
        sendMetadataOffset(call as grpc.ServerUnaryCall<unknown, unknown>, metadataOffset);
        return response;
      });
    return {
      RegisterBroker: unary(logger, 'Controller.RegisterBroker', async (req) => {
        this.checkCluster(req.clusterId, req.brokerId);
        const { registeredOffset } = await controller.registerBroker({
          brokerId: req.brokerId,
          incarnationId: req.incarnationId,
          endpoints: req.endpoints.map((e) => ({ name: e.name, host: e.host, port: e.port })),
          rack: req._rack === undefined ? undefined : req.rack,
          directoryId: req.directoryId === '' ? undefined : req.directoryId,
        });
        return { registeredOffset: String(registeredOffset) };
      }),
      BrokerHeartbeat: unary(logger, 'Controller.BrokerHeartbeat', async (req) => {
        this.checkCluster(req.clusterId, req.brokerId);
        return controller.brokerHeartbeat({
          brokerId: req.brokerId,
          incarnationId: req.incarnationId,
          wantFence: req.wantFence,
          wantShutdown: req.wantShutdown,
          offlineLogDirs: req.offlineLogDirs,
          raftStore: req.metadataDirectoryId === '' ? undefined : { directoryId: req.metadataDirectoryId, rejoining: req.metadataRejoining },
        });
      }),
      AlterPartition: unary(logger, 'Controller.AlterPartition', async (req) => {
        const result = await controller.alterPartition({
          topic: req.topic,
          topicId: req.topicId,
          partition: req.partition,
          leaderId: req.leaderId,
          leaderEpoch: req.leaderEpoch,
          partitionEpoch: req.partitionEpoch,
          newIsr: req.newIsr,
        });
        return { ...result, metadataOffset: String(result.metadataOffset) };
      }),
      AllocateProducerIds: unary(logger, 'Controller.AllocateProducerIds', async (req) => {
        const block = await controller.allocateProducerIds(req.brokerId);
        return { producerIdStart: block.start.toString(), producerIdLen: block.length };
      }),
      CreateTopics: forwarded('CreateTopics', (req) => this.admin.decideCreateTopics(req)),
      DeleteTopics: forwarded('DeleteTopics', (req) => this.admin.decideDeleteTopics(req)),
      CreatePartitions: forwarded('CreatePartitions', (req) => this.admin.decideCreatePartitions(req)),
      AlterConfigs: forwarded('AlterConfigs', (req) => this.admin.decideAlterConfigs(req)),
      DescribeQuorum: unary(logger, 'Controller.DescribeQuorum', async () => this.admin.decideDescribeQuorum()),
      AddRaftVoter: unary(logger, 'Controller.AddRaftVoter', async (req) => {
        await controller.addVoter(req.voterId);
        return {};
      }),
      RemoveRaftVoter: unary(logger, 'Controller.RemoveRaftVoter', async (req) => {
        await controller.removeVoter(req.voterId);
        return {};
      }),
    };
  }

  private checkCluster(clusterId: string, brokerId: number): void {
    const own = this.context.config.clusterId;
    if (clusterId !== own) {
      throw new KavkaError('INCONSISTENT_CLUSTER_ID', `broker ${brokerId} belongs to cluster ${clusterId}, this controller to ${own}; check cluster.id on that node`);
    }
  }
}
