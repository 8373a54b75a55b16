export {
  ReplicaManager,
  AlterPartitionRefused,
  LIST_OFFSETS_EARLIEST,
  LIST_OFFSETS_LATEST,
  LIST_OFFSETS_MAX_TIMESTAMP,
  type Acks,
  type FetchPartitionRequest,
  type FetchPartitionResult,
  type FetchOptions,
  type ReplicaManagerOptions,
  type ReplicationOptions,
} from './replica-manager.js';
export {
  ReplicaFetcherManager,
  truncationOffset,
  type ReplicaFetchRequest,
  type ReplicaFetchPartitionRequest,
  type ReplicaFetchPartitionResult,
  type ReplicaFetchTransport,
  type EpochEndOffset,
} from './replica-fetcher.js';
export { PartitionState } from './partition-state.js';
