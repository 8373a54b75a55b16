// "Failures tolerated now" (DESIGN.md section 3) for writes and for data.
import { describe, expect, it } from 'vitest';
import { failuresTolerated } from '../../src/controller/index.js';
import { cluster, fence } from './cluster-fixture.js';

const VOTERS = [1, 2, 3];

function partition(image: ReturnType<typeof cluster>) {
  const p = image.topic('t')?.partitions[0];
  if (p === undefined) throw new Error('no partition');
  return p;
}

describe('failures tolerated', () => {
  it('RF 3, min.insync 2, all alive: one more failure for writes, two for data, capped by the quorum (one of three voters)', () => {
    const image = cluster([1, 2, 3], [{ name: 't', replicas: [[1, 2, 3]] }]);
    expect(failuresTolerated(image, partition(image), 2, VOTERS)).toEqual({ write: 1, data: 1 });
  });

  it('more brokers than voters: RF 5 with 3 voters tolerates four data failures only if the voters are not among them', () => {
    const image = cluster([1, 2, 3, 4, 5], [{ name: 't', replicas: [[1, 2, 3, 4, 5]] }]);
    expect(failuresTolerated(image, partition(image), 1, [1, 2, 3])).toEqual({ write: 1, data: 1 });
    expect(failuresTolerated(image, partition(image), 1, [1, 2, 3, 4, 5])).toEqual({ write: 2, data: 2 });
  });

  it('goes negative when a fenced voter leaves no slack and the ISR is below min.insync.replicas', () => {
    const image = cluster([1, 2, 3], [{ name: 't', replicas: [[1, 2, 3]] }]);
    const shrunk = image.replay({ type: 'PartitionChange', topic: 't', partition: 0, isr: [1] });
    const down = fence(shrunk, 2, 3);
    expect(failuresTolerated(down, partition(down), 2, VOTERS)).toEqual({ write: -1, data: -1 });
  });

  it('a leaderless partition tolerates nothing more', () => {
    const image = cluster([1, 2, 3], [{ name: 't', replicas: [[1]] }]).replay({ type: 'PartitionChange', topic: 't', partition: 0, leader: -1 });
    expect(failuresTolerated(image, partition(image), 1, VOTERS).data).toBeLessThan(0);
  });
});
