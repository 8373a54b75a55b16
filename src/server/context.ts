// What the gRPC adapters need from the node. The adapters decode, call these, and encode.
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { BrokerConfig } from '../config/index.js';
import type { QuorumController } from '../controller/index.js';
import type { ReplicaManager } from '../replication/index.js';
import type { BrokerMetrics } from './metrics.js';
import type { ControllerChannel } from './controller-channel.js';
import type { ProducerIdManager } from './producer-ids.js';

export interface ServerContext {
  readonly nodeId: number;
  readonly config: BrokerConfig;
  readonly controller: QuorumController;
  /** Calls to the active controller (which may be this node). */
  readonly controllerChannel: ControllerChannel;
  /**
   * False while this node's metadata has not caught up with its registration (after a start or
   * restart): its image may be stale, so it does not answer Metadata yet.
   */
  readonly metadataCaughtUp: () => boolean;
  /** Producer ids for InitProducerId, from blocks the controller allocates. */
  readonly producerIds: ProducerIdManager;
  readonly replicaManager: ReplicaManager;
  readonly metrics: BrokerMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
}
