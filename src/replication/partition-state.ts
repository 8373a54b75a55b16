// A partition this node holds a replica of: its log and the latest metadata about it. In this
// version every partition has one replica, so the leader's high watermark is its durable log end;
// the replication step adds followers, the ISR and HW = min over the ISR.
import type { PartitionLog, TopicPartition } from '../storage/index.js';
import type { PartitionImage } from '../controller/index.js';

export class PartitionState {
  constructor(
    readonly topicPartition: TopicPartition,
    /** The topic incarnation this replica belongs to; a re-created topic has a new id. */
    readonly topicId: string,
    readonly log: PartitionLog,
    public image: PartitionImage,
    public minInsyncReplicas: number,
  ) {}

  /**
   * Offsets below this are committed: consumers see them. With one replica it is the durable log
   * end. Invariant: logStartOffset <= highWatermark <= logEndOffset. Never moves backward while
   * this node leads.
   */
  get highWatermark(): bigint {
    return this.log.durableEndOffset;
  }
}
