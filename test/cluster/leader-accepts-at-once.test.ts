// A node whose Metadata names it a partition's leader accepts writes to it at once, even while
// its replica manager is still opening the partition (it waits for the metadata it has seen).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { assignments, createTopic, produce, startTestCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster(3);
});
afterAll(async () => {
  await cluster?.destroy();
});

it('a node never refuses a produce naming itself as the leader', async () => {
  const leader = 2;
  const answers: { errorCode: string; errorMessage: string }[] = [];
  for (let i = 0; i < 20; i++) {
    const topic = `fresh-${i}`;
    // Created through node 1 (forwarded); node 1 answers once its own metadata has the topic.
    expect((await createTopic(cluster, 1, { name: topic, assignments: assignments([[leader, 3]]) })).errorCode).toBe('NONE');
    // The user's next steps: Metadata from the leader names it leader, then produce to it.
    const metadata = await cluster.metadata(leader, [topic]);
    const named = metadata.topics[0]?.partitions[0]?.leaderId;
    const answer = await produce(cluster, leader, topic, 0, ['v']);
    answers.push({ errorCode: answer.errorCode, errorMessage: `${answer.errorMessage} (Metadata from node ${leader} named leader ${named})` });
  }
  const selfReferential = answers.filter((a) => a.errorMessage.includes(`led by node ${leader}, not by node ${leader}`));
  expect(selfReferential).toEqual([]);
  expect(answers.every((a) => a.errorCode === 'NONE')).toBe(true);
});
