import { mkdir, readFile, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLogManager, type LogManager, type LogManagerOptions } from '../../src/storage/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { KavkaError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { batch, capturingLogger, makeTempDir, readAllBatches, removeTempDir, START_MS, testConfig, TOPIC_ID } from './helpers/fixtures.js';

let dir: string;
let logDir: string;
beforeEach(async () => {
  dir = await makeTempDir();
  logDir = join(dir, 'data');
});
afterEach(async () => {
  await removeTempDir(dir);
});

function options(overrides: Partial<LogManagerOptions> = {}): LogManagerOptions {
  return { logDir, nodeId: 1, clusterId: 'kavka-test-cluster', clock: new ManualClock(START_MS), logger: silentLogger(), ...overrides };
}

async function openError(o: LogManagerOptions): Promise<KavkaError> {
  const error = await openLogManager(o).then(
    (manager) => manager.close().then(() => undefined),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KavkaError);
  return error as KavkaError;
}

describe('openLogManager and meta.properties', () => {
  it('writes meta.properties in Kafka’s format on first start and accepts it later', async () => {
    const manager = await openLogManager(options());
    await manager.close();
    const text = await readFile(join(logDir, 'meta.properties'), 'utf8');
    const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines).toEqual(['version=1', 'cluster.id=kavka-test-cluster', 'node.id=1']);
    await (await openLogManager(options())).close();
  });

  it('refuses a cluster.id or node.id mismatch, naming the file and both values', async () => {
    await (await openLogManager(options())).close();
    const path = join(logDir, 'meta.properties');
    const cluster = await openError(options({ clusterId: 'other-cluster' }));
    expect(cluster.code).toBe('INVALID_CONFIG');
    expect(cluster.message).toContain(path);
    expect(cluster.message).toContain('kavka-test-cluster');
    expect(cluster.message).toContain('other-cluster');
    const node = await openError(options({ nodeId: 2 }));
    expect(node.message).toContain(path);
    expect(node.message).toMatch(/node\.id=1 .*node\.id=2/);
  });

  it('refuses to adopt partition directories without meta.properties', async () => {
    await mkdir(join(logDir, 'orders-0'), { recursive: true });
    const error = await openError(options());
    expect(error.message).toContain('meta.properties is missing');
  });
});

describe('LogManager', () => {
  let manager: LogManager;
  afterEach(async () => {
    await manager.close();
  });

  it('lists partition directories, splitting names on the last dash, and removes interrupted deletions', async () => {
    await (await openLogManager(options())).close();
    for (const name of ['my-topic-3', 'a-b-c-0', 'orders-12', 'orders-1.1700000000000-1-delete', 'weird-x', 'no_partition']) await mkdir(join(logDir, name));
    await writeFile(join(logDir, 'kavka-metadata.log'), '');
    await writeFile(join(logDir, 'orders-7'), 'a file, not a directory');
    manager = await openLogManager(options());
    expect(manager.partitionDirectories()).toEqual([
      { topic: 'a-b-c', partition: 0 },
      { topic: 'my-topic', partition: 3 },
      { topic: 'orders', partition: 12 },
    ]);
    expect(await readdir(logDir)).not.toContain('orders-1.1700000000000-1-delete');
  });

  it('creates, finds, reopens and deletes partition logs', async () => {
    manager = await openLogManager(options());
    const tp = { topic: 'pay-ments', partition: 2 };
    const [log, same] = await Promise.all([manager.createLog(tp, testConfig(), TOPIC_ID), manager.createLog(tp, testConfig(), TOPIC_ID)]);
    expect(same).toBe(log);
    expect(log.directory).toBe(join(logDir, 'pay-ments-2'));
    expect(manager.getLog(tp)).toBe(log);
    expect(manager.logs()).toEqual([log]);
    expect(manager.partitionDirectories()).toEqual([tp]);
    await log.appendAsLeader(batch({ records: 3 }), 0);
    await manager.close();

    manager = await openLogManager(options());
    expect(manager.getLog(tp)).toBeUndefined();
    const reopened = await manager.createLog(tp, testConfig(), TOPIC_ID);
    expect(reopened.logEndOffset).toBe(3n);
    expect((await readAllBatches(reopened)).length).toBe(1);
    await manager.deleteLog(tp);
    expect(manager.getLog(tp)).toBeUndefined();
    expect(manager.partitionDirectories()).toEqual([]);
    expect(await stat(join(logDir, 'pay-ments-2')).catch(() => undefined)).toBeUndefined();
    expect((await readdir(logDir)).filter((n) => n.includes('pay-ments'))).toEqual([]);
    await expect(reopened.appendAsLeader(batch(), 0)).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
    const fresh = await manager.createLog(tp, testConfig(), TOPIC_ID);
    expect(fresh.logEndOffset).toBe(0n);
  });

  it('rejects topic names that cannot be directories', async () => {
    manager = await openLogManager(options());
    await expect(manager.createLog({ topic: '../evil', partition: 0 }, testConfig(), TOPIC_ID)).rejects.toMatchObject({ code: 'INVALID_TOPIC_EXCEPTION' });
    await expect(manager.createLog({ topic: 'ok', partition: -1 }, testConfig(), TOPIC_ID)).rejects.toMatchObject({ code: 'INVALID_PARTITIONS' });
    await expect(manager.createLog({ topic: 'ok', partition: 0 }, testConfig({ segmentBytes: 10 }), TOPIC_ID)).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });

  it('closes every log cleanly', async () => {
    manager = await openLogManager(options());
    const a = await manager.createLog({ topic: 'a', partition: 0 }, testConfig(), TOPIC_ID);
    const b = await manager.createLog({ topic: 'b', partition: 0 }, testConfig(), TOPIC_ID);
    await a.appendAsLeader(batch(), 0);
    await b.appendAsLeader(batch(), 0);
    await manager.close();
    expect(await readdir(join(logDir, 'a-0'))).toContain('.kavka_cleanshutdown');
    expect(await readdir(join(logDir, 'b-0'))).toContain('.kavka_cleanshutdown');
    manager = await openLogManager(options());
  });
});

describe('partition.metadata: the topic id of a partition directory', () => {
  const tp = { topic: 'orders', partition: 0 };
  const OTHER_TOPIC_ID = '5e0c2d1a-7f3b-4a69-8d2e-1b4c9f0a7e53';
  let manager: LogManager;
  afterEach(async () => {
    await manager.close();
  });
  const metadataText = () => readFile(join(logDir, 'orders-0', 'partition.metadata'), 'utf8');

  it('writes partition.metadata in Kafka’s format when it creates a log, and keeps the log on reopen with the same id', async () => {
    manager = await openLogManager(options());
    const log = await manager.createLog(tp, testConfig(), TOPIC_ID);
    expect(await metadataText()).toBe(`version: 0\ntopic_id: ${TOPIC_ID}\n`);
    expect((await readdir(join(logDir, 'orders-0'))).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    await log.appendAsLeader(batch({ records: 2 }), 0);
    await manager.close();
    manager = await openLogManager(options());
    expect((await manager.createLog(tp, testConfig(), TOPIC_ID)).logEndOffset).toBe(2n);
  });

  it('writes partition.metadata into an existing directory that has none (legacy, or a crash mid-create), keeping its data', async () => {
    manager = await openLogManager(options());
    await (await manager.createLog(tp, testConfig(), TOPIC_ID)).appendAsLeader(batch({ records: 3 }), 0);
    await manager.close();
    await unlink(join(logDir, 'orders-0', 'partition.metadata'));
    manager = await openLogManager(options());
    const reopened = await manager.createLog(tp, testConfig(), TOPIC_ID);
    expect(reopened.logEndOffset).toBe(3n);
    expect(await metadataText()).toBe(`version: 0\ntopic_id: ${TOPIC_ID}\n`);
  });

  it('replaces a stray directory of an earlier topic with the same name by a fresh empty log, warning with both ids and the path', async () => {
    manager = await openLogManager(options());
    await (await manager.createLog(tp, testConfig(), OTHER_TOPIC_ID)).appendAsLeader(batch({ records: 4 }), 0);
    await manager.close();
    const logs = capturingLogger();
    manager = await openLogManager(options({ logger: logs.logger }));
    const fresh = await manager.createLog(tp, testConfig(), TOPIC_ID);
    expect(fresh.logEndOffset).toBe(0n);
    expect(fresh.logStartOffset).toBe(0n);
    expect(await readAllBatches(fresh)).toEqual([]);
    expect(await metadataText()).toBe(`version: 0\ntopic_id: ${TOPIC_ID}\n`);
    expect((await readdir(logDir)).filter((name) => name.startsWith('orders'))).toEqual(['orders-0']);
    const warning = logs.entries().find((entry) => entry.level === 40 && entry.strayTopicId !== undefined);
    expect(warning).toMatchObject({ topicId: TOPIC_ID, strayTopicId: OTHER_TOPIC_ID, directory: join(logDir, 'orders-0') });
    expect(String(warning?.msg)).toContain(join(logDir, 'orders-0'));
    const created = logs.entries().find((entry) => entry.topicPartition === 'orders-0' && typeof entry.msg === 'string' && entry.msg.startsWith('log '));
    expect(created?.msg).toBe('log created (new and empty)');
    await fresh.appendAsLeader(batch(), 0);
    expect(fresh.logEndOffset).toBe(1n);
  });

  it('replaces a stray directory without opening it, so a corrupt stray does not block the new topic', async () => {
    await (await openLogManager(options())).close();
    await mkdir(join(logDir, 'orders-0'));
    await writeFile(join(logDir, 'orders-0', 'partition.metadata'), `version: 0\ntopic_id: ${OTHER_TOPIC_ID}\n`);
    // Two segments, the sealed one garbage without indexes: opening this would refuse (KAFKA_STORAGE_ERROR).
    await writeFile(join(logDir, 'orders-0', '00000000000000000000.log'), Buffer.alloc(200, 0x7f));
    await writeFile(join(logDir, 'orders-0', '00000000000000000010.log'), Buffer.alloc(0));
    manager = await openLogManager(options());
    const fresh = await manager.createLog(tp, testConfig(), TOPIC_ID);
    expect(fresh.logEndOffset).toBe(0n);
    expect(await readdir(join(logDir, 'orders-0'))).not.toContain('00000000000000000010.log');
  });

  it('deletes a partition directory that is not open without opening or recovering it (start-up cleanup of strays)', async () => {
    await (await openLogManager(options())).close();
    await mkdir(join(logDir, 'gone-3'));
    await writeFile(join(logDir, 'gone-3', '00000000000000000000.log'), Buffer.alloc(200, 0x7f));
    await writeFile(join(logDir, 'gone-3', '00000000000000000010.log'), Buffer.alloc(0));
    manager = await openLogManager(options());
    expect(manager.partitionDirectories()).toEqual([{ topic: 'gone', partition: 3 }]);
    await manager.deleteLog({ topic: 'gone', partition: 3 });
    expect(manager.partitionDirectories()).toEqual([]);
    expect(manager.getLog({ topic: 'gone', partition: 3 })).toBeUndefined();
    expect((await readdir(logDir)).filter((name) => name.startsWith('gone'))).toEqual([]);
    await manager.deleteLog({ topic: 'gone', partition: 3 }); // a partition with no directory: nothing to do
  });

  it('says a new log was created, not recovered', async () => {
    const logs = capturingLogger();
    manager = await openLogManager(options({ logger: logs.logger }));
    await manager.createLog(tp, testConfig(), TOPIC_ID);
    const messages = logs.entries().filter((entry) => entry.topicPartition === 'orders-0').map((entry) => entry.msg);
    expect(messages).toContain('log created (new and empty)');
    expect(messages).not.toContain('log recovered');
  });
});
