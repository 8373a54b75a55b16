// Builds metadata images for controller tests: registered, unfenced brokers and topics whose
// partitions start with every replica in the ISR and replicas[0] leading.
import { MetadataImage } from '../../src/controller/index.js';
import type { MetadataRecord } from '../../src/controller/metadata-records.js';

export interface FixtureTopic {
  name: string;
  replicas: number[][];
  configs?: Record<string, string>;
}

export function replayAll(image: MetadataImage, records: readonly MetadataRecord[]): MetadataImage {
  return records.reduce((img, r) => img.replay(r), image);
}

export function incarnation(id: number): string {
  return `incarnation-${id}`;
}

export function cluster(brokers: number[], topics: FixtureTopic[] = [], racks: Record<number, string> = {}): MetadataImage {
  const records: MetadataRecord[] = [];
  for (const nodeId of brokers) {
    records.push({ type: 'RegisterBroker', nodeId, endpoints: [], rack: racks[nodeId], incarnationId: incarnation(nodeId) });
    records.push({ type: 'UnfenceBroker', nodeId });
  }
  for (const topic of topics) {
    records.push({ type: 'Topic', name: topic.name, topicId: `id-${topic.name}`, configs: topic.configs ?? {} });
    topic.replicas.forEach((replicas, partition) => {
      records.push({ type: 'Partition', topic: topic.name, partition, replicas, isr: [...replicas], leader: replicas[0], leaderEpoch: 0, partitionEpoch: 0 });
    });
  }
  return replayAll(MetadataImage.EMPTY, records);
}

export function fence(image: MetadataImage, ...ids: number[]): MetadataImage {
  return replayAll(image, ids.map((nodeId) => ({ type: 'FenceBroker', nodeId })));
}
