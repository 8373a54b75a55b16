import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalMetadataLog } from '../../src/controller/local-metadata-log.js';
import type { MetadataRecord } from '../../src/controller/metadata-records.js';
import { silentLogger } from '../../src/util/logger.js';

let dir: string;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const topic = (name: string, partitions: number): MetadataRecord[] => [
  { type: 'Topic', name, topicId: `${name}-id`, configs: {} },
  ...Array.from({ length: partitions }, (_, partition): MetadataRecord => ({ type: 'Partition', topic: name, partition, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 })),
];

describe('the local metadata log', () => {
  it('replays every committed change after a reopen', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kavka-meta-'));
    const path = join(dir, 'meta.log');
    const { log } = LocalMetadataLog.open(path, silentLogger());
    log.append(topic('a', 2));
    log.append(topic('b', 1));
    log.close();
    expect(LocalMetadataLog.open(path, silentLogger()).records.map((r) => r.type)).toEqual(['Topic', 'Partition', 'Partition', 'Topic', 'Partition']);
  });

  it('applies a change torn at any byte either whole or not at all, and keeps appending after it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kavka-meta-'));
    const path = join(dir, 'meta.log');
    const { log } = LocalMetadataLog.open(path, silentLogger());
    log.append(topic('first', 1));
    log.close();
    const firstLength = (await readFile(path)).length;
    const reopened = LocalMetadataLog.open(path, silentLogger()).log;
    reopened.append(topic('half', 3));
    reopened.close();
    const whole = await readFile(path);
    for (let cut = firstLength; cut < whole.length; cut++) {
      await writeFile(path, whole.subarray(0, cut));
      const { log: again, records } = LocalMetadataLog.open(path, silentLogger());
      expect(records.map((r) => (r.type === 'Topic' ? r.name : r.type)), `cut at ${cut}`).toEqual(['first', 'Partition']);
      again.append(topic('after', 1));
      again.close();
      const replayed = LocalMetadataLog.open(path, silentLogger());
      expect(replayed.records.filter((r) => r.type === 'Topic').map((r) => (r.type === 'Topic' ? r.name : ''))).toEqual(['first', 'after']);
      replayed.log.close();
    }
  });

  it('refuses to start on a corrupt change with committed changes after it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kavka-meta-'));
    const path = join(dir, 'meta.log');
    const { log } = LocalMetadataLog.open(path, silentLogger());
    log.append(topic('a', 1));
    log.append(topic('b', 1));
    log.close();
    const bytes = await readFile(path);
    bytes[20] ^= 0x01;
    await writeFile(path, bytes);
    expect(() => LocalMetadataLog.open(path, silentLogger())).toThrow(/corrupt at byte 0/);
  });
});
