// A controlled shutdown in a multi-node cluster must not wait for the peers' long-lived inbound
// Raft streams (nothing but the stopping node can end them): with a shutdown bound far above the
// test's timeout, a stop held by them would time the test out.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { others, startTestCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
beforeAll(async () => {
  // The default bound.
  cluster = await startTestCluster(3, { 'shutdown.timeout.ms': '600000' });
});
afterAll(async () => {
  await cluster?.destroy();
});

it('a controlled shutdown of an idle node completes without waiting out shutdown.timeout.ms', async () => {
  const controllerId = await cluster.waitForActiveController();
  const [node] = others(cluster.ids, controllerId);
  await cluster.stopNode(node);
  expect(cluster.runningIds()).not.toContain(node);
});
