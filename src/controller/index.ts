export { MetadataImage, type BrokerImage, type PartitionImage, type TopicImage } from './metadata-image.js';
export type { MetadataRecord } from './metadata-records.js';
export { LocalController, METADATA_LOG_FILE, type LocalControllerOptions } from './local-controller.js';
export { validateTopicName, collisionKey, isInternalTopic, MAX_TOPIC_NAME_LENGTH } from './topic-name.js';
export { TOPIC_CONFIG_KEYS, isTopicConfigKey, validateTopicConfig, type TopicConfigKey } from './topic-config.js';
export {
  placeReplicas,
  MAX_PARTITIONS_PER_TOPIC,
  type CreateTopicRequest,
  type CreatePartitionsRequest,
  type AlterTopicConfigRequest,
  type TopicResult,
  type CreatedTopicResult,
} from './topic-operations.js';
