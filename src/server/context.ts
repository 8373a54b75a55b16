// What the gRPC adapters need from the node. The adapters decode, call these, and encode.
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { BrokerConfig } from '../config/index.js';
import type { LocalController } from '../controller/index.js';
import type { ReplicaManager } from '../replication/index.js';
import type { BrokerMetrics } from './metrics.js';

export interface ServerContext {
  readonly nodeId: number;
  readonly config: BrokerConfig;
  readonly controller: LocalController;
  readonly replicaManager: ReplicaManager;
  readonly metrics: BrokerMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
}
