// The storage layer: partition logs of RecordBatch v2 bytes in segment files, their recovery,
// retention and durability, and the log dir that holds them (DESIGN.md section 2).
export {
  topicPartitionName,
  UNDEFINED_EPOCH,
  UNDEFINED_EPOCH_OFFSET,
  type AppendResult,
  type EpochEndOffset,
  type FlushPolicy,
  type LogConfig,
  type LogDirFailureCause,
  type LogDirState,
  type LogManager,
  type LogManagerOptions,
  type MessageTimestampType,
  type PartitionLog,
  type ReadOptions,
  type ReadResult,
  type SealedSegmentVerification,
  type TimestampOffset,
  type TopicPartition,
} from './api.js';
export { validateLogConfig } from './log-config.js';
export { openLogManager } from './log-manager.js';
export { openPartitionLog } from './open-partition-log.js';
export type { FilePartitionLog, PartitionLogOptions } from './partition-log.js';
export type { CorruptionRepair, LogRecoveryReport } from './log-loader.js';
export type { EpochEntry } from './leader-epoch-cache.js';
export { LogDirHealth } from './log-dir-health.js';
export { parsePartitionDirectoryName, isValidTopicName } from './partition-directory.js';
export { nodeStorageFs, type FileStat, type OpenMode, type StorageFile, type StorageFs } from './storage-fs.js';
export { FaultInjectingFs, type FaultInjectingFsOptions, type FsCall, type FsHold, type FsOperation, type PathMatcher } from './fault-injecting-fs.js';
export { ProducerStateManager, DEFAULT_PRODUCER_ID_EXPIRATION_MS, type AppendCheck, type ProducerBatchMeta, type ProducerStateSnapshot, type UnknownProducerPolicy } from './producer-state.js';
