export {
  ReplicaManager,
  LIST_OFFSETS_EARLIEST,
  LIST_OFFSETS_LATEST,
  LIST_OFFSETS_MAX_TIMESTAMP,
  type Acks,
  type FetchPartitionRequest,
  type FetchPartitionResult,
  type FetchOptions,
  type ReplicaManagerOptions,
} from './replica-manager.js';
export { PartitionState } from './partition-state.js';
