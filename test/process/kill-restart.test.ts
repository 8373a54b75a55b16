// SIGKILL of a real broker process in the middle of produces: after a restart every
// acknowledged record is still there, offsets have no gaps, and no offset holds a record other
// than the one acknowledged for it.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBrokerProcess, type BrokerProcess } from '../helpers/broker-process.js';
import { call, rawClient } from '../server/raw-client.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';

const PARTITIONS = 3;
let running: BrokerProcess | undefined;
let dataDir: string | undefined;

afterEach(async () => {
  if (running && running.child.exitCode === null) {
    running.child.kill('SIGKILL');
    await running.exited;
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function readPartition(address: string, partition: number): Promise<{ offset: bigint; value: string }[]> {
  const client = rawClient(address);
  const out: { offset: bigint; value: string }[] = [];
  let offset = '0';
  for (let round = 0; round < 10_000; round++) {
    const result = await call<object, FetchResponse__Output>(client, 'Fetch', { maxWaitMs: 0, plainRecords: true, topics: [{ name: 'durable', partitions: [{ partition, fetchOffset: offset }] }] });
    if (!result.ok) throw new Error(`fetch failed: ${result.details}`);
    const p = result.value.topics[0].partitions[0];
    expect(p.errorCode).toBe('NONE');
    for (const r of p.records) out.push({ offset: BigInt(r.offset), value: r.value?.toString() ?? '' });
    if (p.records.length === 0 || p.nextFetchOffset === p.highWatermark) break;
    offset = p.nextFetchOffset;
  }
  client.close();
  return out;
}

describe('a broker killed with SIGKILL during produce', () => {
  it('keeps every acknowledged record, with no gaps and no reused offsets, after restart', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'kavka-kill-'));
    running = await startBrokerProcess(dataDir, { 'num.partitions': String(PARTITIONS), 'log.segment.bytes': '65536' });
    const client = rawClient(running.clientAddress);
    // acknowledged[p] maps offset -> value for every acks=all produce that returned success.
    const acknowledged = Array.from({ length: PARTITIONS }, () => new Map<bigint, string>());
    let sequence = 0;
    let stop = false;
    const producers = Array.from({ length: 4 }, async (_, worker) => {
      for (let i = 0; i < 5_000 && !stop; i++) {
        const partition = (worker + i) % PARTITIONS;
        const values = Array.from({ length: 1 + (i % 5) }, () => `w${worker}-${sequence++}`);
        const result = await call<object, ProduceResponse__Output>(client, 'Produce', {
          acks: -1,
          topics: [{ name: 'durable', partitions: [{ partition, records: values.map((v) => ({ key: Buffer.from(v), value: Buffer.from(v) })) }] }],
        });
        if (!result.ok) break; // the process is gone: the outcome of this request is unknown
        const response = result.value.topics[0].partitions[0];
        if (response.errorCode !== 'NONE') continue;
        const base = BigInt(response.baseOffset);
        values.forEach((v, k) => acknowledged[partition].set(base + BigInt(k), v));
      }
    });
    // Kill once a good number of produces were acknowledged, while producers are still running.
    for (let i = 0; i < 600 && acknowledged.reduce((n, m) => n + m.size, 0) < 1_500; i++) await new Promise((r) => setTimeout(r, 25));
    running.child.kill('SIGKILL');
    await running.exited;
    stop = true;
    await Promise.all(producers);
    client.close();
    expect(acknowledged.reduce((n, m) => n + m.size, 0)).toBeGreaterThan(100);

    running = await startBrokerProcess(dataDir, { 'num.partitions': String(PARTITIONS), 'log.segment.bytes': '65536' });
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const records = await readPartition(running.clientAddress, partition);
      // No gaps: offsets run 0, 1, 2, ... (nothing in this log is compacted).
      expect(records.map((r) => r.offset)).toEqual(records.map((_, i) => BigInt(i)));
      const stored = new Map(records.map((r) => [r.offset, r.value]));
      for (const [offset, value] of acknowledged[partition]) {
        expect(stored.get(offset), `partition ${partition} offset ${offset}`).toBe(value);
      }
    }
  });
});
