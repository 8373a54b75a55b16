// The records of the metadata log. Applying them in order (replay) is the only way the
// MetadataImage changes, on every node. Today a single node keeps them in a local file
// (local-metadata-log.ts); the Raft step replicates the same records.

export interface RegisterBrokerRecord {
  type: 'RegisterBroker';
  nodeId: number;
  endpoints: { name: string; host: string; port: number }[];
  rack?: string;
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

/** Sets (value) or removes (value null) topic config keys. */
export interface ConfigRecord {
  type: 'Config';
  topic: string;
  changes: Record<string, string | null>;
}

export type MetadataRecord = RegisterBrokerRecord | TopicRecord | PartitionRecord | RemoveTopicRecord | ConfigRecord;
