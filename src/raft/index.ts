// The Raft layer's public surface: the pure core, and the driver (RaftNode) with its storage and
// transport ports.
export { RaftCore } from './raft-core.js';
export type { RaftOptions } from './raft-options.js';
export { EMPTY_HARD_STATE, type DurableState, type Ready } from './ready.js';
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
  type ProposeResult,
  type ProposeRejection,
  type RaftStatus,
  type ProgressStatus,
} from './types.js';
export { makeConfig, applyConfigChange, validateConfigChange, formatConfig } from './membership.js';
export type { ProgressState } from './progress.js';
export { RaftNode, type RaftNodeOptions, type ApplyEvent, type ApplyHandler, type LeaderChange, type Committed } from './raft-node.js';
export { MemoryRaftStorage, applyWrite, type RaftStorage, type PersistWrite } from './raft-storage.js';
export { FaultSwitchRaftStorage } from './fault-switch-raft-storage.js';
export { LevelRaftStorage, RAFT_WRITE_OPTIONS, type LevelRaftStorageOptions } from './level-raft-storage.js';
export { MemoryRaftNetwork, type RaftTransport } from './raft-transport.js';
export {
  GrpcRaftTransport,
  raftServiceDefinition,
  raftServiceHandlers,
  loadRaftPackageDefinition,
  RAFT_SERVICE_NAME,
  type GrpcRaftTransportOptions,
  type RaftServiceOptions,
  type RaftReceiveStats,
  type PeerLinkStats,
  type RaftProbeAnswer,
} from './grpc-raft-transport.js';
export { messageToProto, messageFromProto, RAFT_PROTO_FILE, NO_NODE_ID, type DecodedRaftMessage } from './raft-codec.js';
