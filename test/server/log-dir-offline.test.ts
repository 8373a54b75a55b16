// A write or fsync error takes the log dir offline (DESIGN.md section 2): produces fail with
// KAFKA_STORAGE_ERROR, /readyz says why, the failed fsync is never retried, and after a restart
// through normal recovery every acknowledged record is there.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type Broker } from '../../src/broker/index.js';
import { FaultInjectingFs } from '../../src/storage/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { call, rawClient } from './raw-client.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';

const brokers: Broker[] = [];
let dataDir = '';

afterAll(async () => {
  for (const b of brokers) await b.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function start(fs?: FaultInjectingFs): Promise<Broker> {
  const broker = await startBroker({
    overrides: { listeners: 'CLIENT://127.0.0.1:0,INTERNAL://127.0.0.1:0', 'admin.listener': '127.0.0.1:0', 'log.dirs': dataDir },
    logger: silentLogger(),
    fs,
  });
  brokers.push(broker);
  return broker;
}

describe('a full disk', () => {
  it.each(['write', 'datasync'] as const)('on %s takes the log dir offline and loses nothing acknowledged', async (operation) => {
    dataDir = await mkdtemp(join(tmpdir(), 'kavka-offline-'));
    const fs = new FaultInjectingFs();
    const broker = await start(fs);
    const client = rawClient(broker.clientAddress);
    const produce = (value: string) =>
      call<object, ProduceResponse__Output>(client, 'Produce', { topics: [{ name: 'disk', partitions: [{ partition: 0, records: [{ value: Buffer.from(value) }] }] }] });
    const acknowledged: string[] = [];
    for (const value of ['one', 'two', 'three']) {
      const result = await produce(value);
      expect(result.ok && result.value.topics[0].partitions[0].errorCode).toBe('NONE');
      acknowledged.push(value);
    }

    fs.failAlways(operation, 'ENOSPC', (path) => path.endsWith('.log'));
    const syncsBefore = fs.count('datasync');
    const failed = await produce('four');
    expect(failed.ok && failed.value.topics[0].partitions[0].errorCode).toBe('KAFKA_STORAGE_ERROR');
    const after = await produce('five');
    expect(after.ok && after.value.topics[0].partitions[0].errorCode).toBe('KAFKA_STORAGE_ERROR');
    // Never retried: no further fsync once the dir is offline.
    expect(fs.count('datasync')).toBeLessThanOrEqual(syncsBefore + 1);
    const ready = await fetch(`http://${broker.adminAddress}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('offline');
    const metrics = await (await fetch(`http://${broker.adminAddress}/metrics`)).text();
    expect(metrics).toMatch(/kavka_log_dir_offline\{node_id="1"\} 1/);

    client.close();
    await broker.stop();
    fs.clearFaults();

    const restarted = await start();
    const again = rawClient(restarted.clientAddress);
    const fetched = await call<object, FetchResponse__Output>(again, 'Fetch', { maxWaitMs: 0, plainRecords: true, topics: [{ name: 'disk', partitions: [{ partition: 0, fetchOffset: '0' }] }] });
    expect(fetched.ok).toBe(true);
    if (fetched.ok) {
      const values = fetched.value.topics[0].partitions[0].records.map((r) => r.value?.toString());
      expect(values.slice(0, acknowledged.length)).toEqual(acknowledged);
    }
    const next = await call<object, ProduceResponse__Output>(again, 'Produce', { topics: [{ name: 'disk', partitions: [{ partition: 0, records: [{ value: Buffer.from('six') }] }] }] });
    expect(next.ok && next.value.topics[0].partitions[0].errorCode).toBe('NONE');
    again.close();
    await restarted.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
});
