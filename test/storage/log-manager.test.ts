import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLogManager, type LogManager, type LogManagerOptions } from '../../src/storage/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { KavkaError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { batch, makeTempDir, readAllBatches, removeTempDir, START_MS, testConfig } from './helpers/fixtures.js';

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
    const [log, same] = await Promise.all([manager.createLog(tp, testConfig()), manager.createLog(tp, testConfig())]);
    expect(same).toBe(log);
    expect(log.directory).toBe(join(logDir, 'pay-ments-2'));
    expect(manager.getLog(tp)).toBe(log);
    expect(manager.logs()).toEqual([log]);
    expect(manager.partitionDirectories()).toEqual([tp]);
    await log.appendAsLeader(batch({ records: 3 }), 0);
    await manager.close();

    manager = await openLogManager(options());
    expect(manager.getLog(tp)).toBeUndefined();
    const reopened = await manager.createLog(tp, testConfig());
    expect(reopened.logEndOffset).toBe(3n);
    expect((await readAllBatches(reopened)).length).toBe(1);
    await manager.deleteLog(tp);
    expect(manager.getLog(tp)).toBeUndefined();
    expect(manager.partitionDirectories()).toEqual([]);
    expect(await stat(join(logDir, 'pay-ments-2')).catch(() => undefined)).toBeUndefined();
    expect((await readdir(logDir)).filter((n) => n.includes('pay-ments'))).toEqual([]);
    await expect(reopened.appendAsLeader(batch(), 0)).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
    const fresh = await manager.createLog(tp, testConfig());
    expect(fresh.logEndOffset).toBe(0n);
  });

  it('rejects topic names that cannot be directories', async () => {
    manager = await openLogManager(options());
    await expect(manager.createLog({ topic: '../evil', partition: 0 }, testConfig())).rejects.toMatchObject({ code: 'INVALID_TOPIC_EXCEPTION' });
    await expect(manager.createLog({ topic: 'ok', partition: -1 }, testConfig())).rejects.toMatchObject({ code: 'INVALID_PARTITIONS' });
    await expect(manager.createLog({ topic: 'ok', partition: 0 }, testConfig({ segmentBytes: 10 }))).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });

  it('closes every log cleanly', async () => {
    manager = await openLogManager(options());
    const a = await manager.createLog({ topic: 'a', partition: 0 }, testConfig());
    const b = await manager.createLog({ topic: 'b', partition: 0 }, testConfig());
    await a.appendAsLeader(batch(), 0);
    await b.appendAsLeader(batch(), 0);
    await manager.close();
    expect(await readdir(join(logDir, 'a-0'))).toContain('.kavka_cleanshutdown');
    expect(await readdir(join(logDir, 'b-0'))).toContain('.kavka_cleanshutdown');
    manager = await openLogManager(options());
  });
});
