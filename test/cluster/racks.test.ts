// broker.rack reaches placement: brokers register their rack, and the active controller spreads
// each partition's replicas across racks when every broker has one.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTopic, startTestCluster, type TestCluster } from '../helpers/cluster.js';

const RACKS: Record<number, string> = { 1: 'zone-a', 2: 'zone-a', 3: 'zone-b' };
let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster(3, {}, { nodeOverrides: { 1: { 'broker.rack': RACKS[1] }, 2: { 'broker.rack': RACKS[2] }, 3: { 'broker.rack': RACKS[3] } } });
});
afterAll(async () => {
  await cluster?.destroy();
});

it('places the two replicas of every partition in different racks', async () => {
  expect((await createTopic(cluster, 1, { name: 'spread', numPartitions: 8, replicationFactor: 2 })).errorCode).toBe('NONE');
  const metadata = await cluster.metadata(2, ['spread']);
  expect(metadata.brokers.map((b) => [b.nodeId, b.rack]).sort()).toEqual([[1, 'zone-a'], [2, 'zone-a'], [3, 'zone-b']]);
  const partitions = metadata.topics[0].partitions;
  expect(partitions).toHaveLength(8);
  for (const p of partitions) expect(new Set(p.replicas.map((id) => RACKS[id])).size, `partition ${p.partition}: ${p.replicas.join(',')}`).toBe(2);
});
