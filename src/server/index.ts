export { GrpcServers, type BoundListener } from './grpc-server.js';
export { AdminHttpServer, type Readiness } from './admin-http.js';
export { BrokerMetrics } from './metrics.js';
export { topicDefaults } from './config-handler.js';
export type { ServerContext } from './context.js';
export { ControllerChannel, METADATA_OFFSET_HEADER, type ControllerMethod, type ControllerReply } from './controller-channel.js';
export { ReplicationClient, replicationDefinition, replicationHandlers } from './replication-service.js';
export { ProducerIdManager } from './producer-ids.js';
