// The Raft layer's public surface. The pure core only: the driver (RaftNode) arrives separately.
export {
  RaftCore,
  EMPTY_HARD_STATE,
  type RaftOptions,
  type DurableState,
  type Ready,
  type ProposeResult,
  type ProposeRejection,
  type RaftStatus,
  type ProgressStatus,
} from './raft-core.js';
export type {
  Message,
  MessageType,
  AppendMessage,
  AppendResponseMessage,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  VoteMessage,
  VoteResponseMessage,
  InstallSnapshotMessage,
  TimeoutNowMessage,
} from './messages.js';
export {
  isVoter,
  isMember,
  members,
  quorumSize,
  type NodeId,
  type ConfigChange,
  type ClusterConfig,
  type EntryPayload,
  type Entry,
  type HardState,
  type SnapshotMetadata,
  type Snapshot,
  type RoleKind,
  type SoftState,
} from './types.js';
export { makeConfig, applyConfigChange, validateConfigChange, formatConfig } from './membership.js';
export type { ProgressState } from './progress.js';
