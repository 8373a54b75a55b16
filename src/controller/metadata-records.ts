// The records of the metadata log. Applying them in order (replay) is the only way the
// MetadataImage changes, on every node. Raft replicates them: each log entry is one batch of
// records, committed and applied atomically (metadata-codec.ts, quorum-controller.ts).

export interface RegisterBrokerRecord {
  type: 'RegisterBroker';
  nodeId: number;
  endpoints: { name: string; host: string; port: number }[];
  rack?: string;
  /**
   * A fresh id per broker process start (KIP-631): heartbeats naming another incarnation are
   * from a process that has since restarted and are rejected. Absent in records written before
   * incarnations existed; such a registration matches no heartbeat's incarnation but its own.
   */
  incarnationId?: string;
  /**
   * The id of the broker's log dir contents (its Raft store's directory id). A registration with
   * another id than the broker's previous one means its log dir was deleted and re-created.
   * Absent in records written before it existed.
   */
  directoryId?: string;
}

/** The broker's session ended (heartbeats stopped, or it asked): it leads nothing and takes no new replicas. */
export interface FenceBrokerRecord {
  type: 'FenceBroker';
  nodeId: number;
}

/** The broker's heartbeat was accepted: it may lead partitions and take replicas again. */
export interface UnfenceBrokerRecord {
  type: 'UnfenceBroker';
  nodeId: number;
}

export interface UnregisterBrokerRecord {
  type: 'UnregisterBroker';
  nodeId: number;
}

export interface TopicRecord {
  type: 'Topic';
  name: string;
  topicId: string;
  configs: Record<string, string>;
}

export interface PartitionRecord {
  type: 'Partition';
  topic: string;
  partition: number;
  replicas: number[];
  isr: number[];
  leader: number;
  leaderEpoch: number;
  partitionEpoch: number;
}

export interface RemoveTopicRecord {
  type: 'RemoveTopic';
  name: string;
}

/**
 * Changes an existing partition; absent fields keep their value. Replay bumps partitionEpoch on
 * every change and leaderEpoch when the leader changes (KIP-631 PartitionChangeRecord).
 */
export interface PartitionChangeRecord {
  type: 'PartitionChange';
  topic: string;
  partition: number;
  /** -1 leaves the partition offline. */
  leader?: number;
  isr?: number[];
  replicas?: number[];
}

/** The controller handed out producer ids below nextProducerId (one block at a time). */
export interface ProducerIdsRecord {
  type: 'ProducerIds';
  brokerId: number;
  nextProducerId: number;
}

/** Sets (value) or removes (value null) topic config keys. */
export interface ConfigRecord {
  type: 'Config';
  topic: string;
  changes: Record<string, string | null>;
}

export type MetadataRecord =
  | RegisterBrokerRecord
  | FenceBrokerRecord
  | UnfenceBrokerRecord
  | UnregisterBrokerRecord
  | TopicRecord
  | PartitionRecord
  | PartitionChangeRecord
  | RemoveTopicRecord
  | ConfigRecord
  | ProducerIdsRecord;
