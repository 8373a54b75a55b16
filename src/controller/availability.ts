// How many more failures a partition tolerates right now (DESIGN.md section 3), a figure no Kafka
// tool shows directly:
//   write = min(|ISR| - min.insync.replicas, liveVoters - quorum)  acks=all produce keeps working
//   data  = min(|ISR| - 1,                   liveVoters - quorum)  no acknowledged record is lost
// A live voter is a controller voter whose broker is registered and unfenced; quorum is a
// majority of the voters. Negative means the partition is already past it (e.g. write = -1:
// acks=all fails now).
import type { MetadataImage, PartitionImage } from './metadata-image.js';

export interface FailuresTolerated {
  write: number;
  data: number;
}

export function failuresTolerated(image: MetadataImage, partition: PartitionImage, minInsyncReplicas: number, voters: readonly number[]): FailuresTolerated {
  const liveVoters = voters.filter((id) => image.isUnfenced(id)).length;
  const quorumSlack = liveVoters - (Math.floor(voters.length / 2) + 1);
  const isr = partition.leader === -1 ? 0 : partition.isr.length;
  return { write: Math.min(isr - minInsyncReplicas, quorumSlack), data: Math.min(isr - 1, quorumSlack) };
}
