export { MetadataImage, type BrokerImage, type PartitionImage, type TopicImage } from './metadata-image.js';
export type { MetadataRecord } from './metadata-records.js';
export {
  QuorumController,
  type QuorumControllerOptions,
  type RegisterBrokerRequest,
  type Decided,
  type QuorumDescription,
  type QuorumMember,
} from './quorum-controller.js';
export { encodeMetadataBatch, decodeMetadataBatch, encodeMetadataSnapshot, decodeMetadataSnapshot, imageToRecords } from './metadata-codec.js';
export { validateTopicName, collisionKey, isInternalTopic, MAX_TOPIC_NAME_LENGTH } from './topic-name.js';
export { TOPIC_CONFIG_KEYS, isTopicConfigKey, validateTopicConfig, type TopicConfigKey } from './topic-config.js';
export {
  placeReplicas,
  placeReplicasRackAware,
  rackAlternatingOrder,
  placementBrokers,
  MAX_PARTITIONS_PER_TOPIC,
  type CreateTopicRequest,
  type CreatePartitionsRequest,
  type AlterTopicConfigRequest,
  type TopicResult,
  type CreatedTopicResult,
} from './topic-operations.js';
export {
  electLeaders,
  electPreferredLeaders,
  alterPartition,
  uncleanLeaderElectionEnabled,
  UNCLEAN_LEADER_ELECTION_ENABLE,
  DEFAULT_LEADERSHIP_OPTIONS,
  type LeadershipOptions,
  type AlterPartitionRequest,
  type AlterPartitionResponse,
} from './partition-leadership.js';
export {
  BrokerHeartbeatTracker,
  fenceStaleBrokers,
  handleHeartbeat,
  withLeadershipChanges,
  type BrokerHeartbeatRequest,
  type BrokerHeartbeatResponse,
} from './broker-liveness.js';
export { failuresTolerated, type FailuresTolerated } from './availability.js';
