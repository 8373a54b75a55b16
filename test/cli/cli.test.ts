// `kavka topic` and `kavka cat` as users run them: the built CLI (dist/cli/main.js, which
// `npm test` builds first) in a child process against a real broker started by this test.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { partitionForKey } from '../../src/util/murmur2.js';

const MAIN = join(process.cwd(), 'dist', 'cli', 'main.js');

let node: TestBroker;
let scratch: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function kavka(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

const b = () => ['-b', node.clientAddress];

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build (npm test does it first)`);
  node = await startTestBroker({ 'shutdown.timeout.ms': '500' });
  scratch = await mkdtemp(join(tmpdir(), 'kavka-cli-test-'));
});

afterAll(async () => {
  await node?.destroy();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

describe('kavka topic', () => {
  it('creates, describes, lists, configures and deletes a topic', async () => {
    const created = await kavka(['topic', 'create', 'orders', '--partitions', '3', '--replication-factor', '1', '--config', 'retention.ms=86400000', ...b()]);
    expect(created).toMatchObject({ code: 0, stdout: 'Created topic orders.\n' });

    const described = await kavka(['topic', 'describe', 'orders', ...b()]);
    expect(described.code).toBe(0);
    expect(described.stdout).toBe(
      'Topic: orders\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=86400000\n' +
        [0, 1, 2].map((p) => `\tTopic: orders\tPartition: ${p}\tLeader: 1\tReplicas: 1\tIsr: 1\n`).join(''),
    );

    const altered = await kavka(['topic', 'alter-config', 'orders', '--config', 'segment.bytes=1048576', '--delete-config', 'retention.ms', ...b()]);
    expect(altered).toMatchObject({ code: 0, stdout: 'Completed updating config for topic orders.\n' });
    expect((await kavka(['topic', 'describe', '--topic', 'orders', ...b()])).stdout.split('\n')[0]).toBe('Topic: orders\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: segment.bytes=1048576');

    expect((await kavka(['topic', 'list', ...b()])).stdout.split('\n')).toContain('orders');
    expect(await kavka(['topic', 'delete', 'orders', ...b()])).toMatchObject({ code: 0, stdout: 'Deleted topic orders.\n' });
    expect((await kavka(['topic', 'list', ...b()])).stdout.split('\n')).not.toContain('orders');
  });

  it('takes a kafka-topics replica assignment', async () => {
    const created = await kavka(['topic', 'create', '--topic', 'assigned', '--replica-assignment', '1,1', ...b()]);
    expect(created.code).toBe(0);
    const described = await kavka(['topic', 'describe', 'assigned', ...b()]);
    expect(described.stdout).toContain('PartitionCount: 2\tReplicationFactor: 1');
  });

  it('fails with the Kafka error name and exit code 1', async () => {
    await kavka(['topic', 'create', 'twice', ...b()]);
    const again = await kavka(['topic', 'create', 'twice', ...b()]);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/^Error: TOPIC_ALREADY_EXISTS/);
    expect((await kavka(['topic', 'create', 'twice', '--if-not-exists', ...b()])).code).toBe(0);

    const missing = await kavka(['topic', 'describe', 'nope', ...b()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/UNKNOWN_TOPIC_OR_PARTITION/);
    const invalid = await kavka(['topic', 'create', 'bad/name', ...b()]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/INVALID_TOPIC_EXCEPTION/);
  });
});

describe('kavka cat', () => {
  const lines = Array.from({ length: 1000 }, (_, i) => `key-${i}:value-${i}`);

  beforeAll(async () => {
    await kavka(['topic', 'create', 'cat', '--partitions', '3', ...b()]);
    const file = join(scratch, 'lines.txt');
    await writeFile(file, `${lines.join('\n')}\n`);
    const produced = await kavka(['cat', '-P', ...b(), '-t', 'cat', '-K', ':', '-l', file]);
    expect(produced).toMatchObject({ code: 0, stdout: '' });
  });

  it('consumes every produced line back with -e, keyed lines on their murmur2 partition', async () => {
    const consumed = await kavka(['cat', '-C', ...b(), '-t', 'cat', '-e', '-f', '%p %o %k %s\n']);
    expect(consumed.code).toBe(0);
    const rows = consumed.stdout.trimEnd().split('\n').map((row) => row.split(' '));
    expect(rows).toHaveLength(1000);
    for (const [partition, , key] of rows) expect(Number(partition)).toBe(partitionForKey(Buffer.from(key), 3));
    for (const p of ['0', '1', '2']) {
      const mine = rows.filter((r) => r[0] === p);
      expect(mine.map((r) => Number(r[1]))).toEqual(mine.map((_, i) => i));
      const values = mine.map((r) => Number(r[3].slice('value-'.length)));
      expect(values).toEqual([...values].sort((x, y) => x - y));
    }
    expect(consumed.stderr).toMatch(/% Reached end of topic cat \[\d\] at offset \d+: exiting/);
  });

  it('prints only values by default and nothing but records on stdout', async () => {
    const consumed = await kavka(['cat', '-C', ...b(), '-t', 'cat', '-p', '0', '-e', '-q']);
    expect(consumed.stderr).toBe('');
    const values = consumed.stdout.split('\n');
    expect(values.pop()).toBe('');
    expect(values.every((v) => /^value-\d+$/.test(v))).toBe(true);
  });

  it('starts N records before the end of every partition with -o -N', async () => {
    const offsets = await kavka(['cat', '-C', ...b(), '-t', 'cat', '-o', '-2', '-e', '-q', '-f', '%p %o\n']);
    const ends = await kavka(['cat', '-Q', ...b(), '-t', 'cat:0:-1', '-t', 'cat:1:-1', '-t', 'cat:2:-1']);
    const high = new Map(ends.stdout.trimEnd().split('\n').map((l) => [Number(/\[(\d)\]/.exec(l)?.[1]), Number(l.split(' offset ')[1])]));
    const rows = offsets.stdout.trimEnd().split('\n').sort();
    expect(rows).toEqual([0, 1, 2].flatMap((p) => [`${p} ${(high.get(p) as number) - 2}`, `${p} ${(high.get(p) as number) - 1}`]).sort());
  });

  it('prints kcat JSON, with headers only when a record has them', async () => {
    await kavka(['topic', 'create', 'json', ...b()]);
    await kavka(['cat', '-P', ...b(), '-t', 'json', '-K', '=', '-H', 'h1=v1', '-H', 'h2'], 'k=v\n');
    await kavka(['cat', '-P', ...b(), '-t', 'json'], 'plain\n');
    const consumed = await kavka(['cat', '-C', ...b(), '-t', 'json', '-e', '-J']);
    const [first, second] = consumed.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(Object.keys(first)).toEqual(['topic', 'partition', 'offset', 'tstype', 'ts', 'broker', 'headers', 'key', 'payload']);
    expect(first).toMatchObject({ topic: 'json', partition: 0, offset: 0, tstype: 'create', broker: 1, headers: ['h1', 'v1', 'h2', null], key: 'k', payload: 'v' });
    expect(typeof first.ts).toBe('number');
    expect(Object.keys(second)).toEqual(['topic', 'partition', 'offset', 'tstype', 'ts', 'broker', 'key', 'payload']);
    expect(second).toMatchObject({ offset: 1, key: null, payload: 'plain' });
  });

  it('starts at a timestamp with -o s@ and stops at one with -o e@', async () => {
    await kavka(['topic', 'create', 'times', ...b()]);
    await kavka(['cat', '-P', ...b(), '-t', 'times'], 'a\nb\n');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await kavka(['cat', '-P', ...b(), '-t', 'times'], 'c\nd\n');
    const all = (await kavka(['cat', '-C', ...b(), '-t', 'times', '-e', '-f', '%T %s\n'])).stdout.trimEnd().split('\n');
    const ts = all[2].split(' ')[0];
    expect(Number(ts)).toBeGreaterThan(Number(all[1].split(' ')[0]));
    expect((await kavka(['cat', '-C', ...b(), '-t', 'times', '-e', '-o', `s@${ts}`])).stdout).toBe('c\nd\n');
    const until = await kavka(['cat', '-C', ...b(), '-t', 'times', '-o', `e@${ts}`]);
    expect(until.stdout).toBe('a\nb\n');
    expect(until.stderr).toContain('% Reached stop timestamp for topic times [0] at offset 2: exiting');
  });

  it('answers -Q with kcat text and JSON', async () => {
    const text = await kavka(['cat', '-Q', ...b(), '-t', 'times:0:0', '-t', 'times:0:99999999999999']);
    expect(text).toMatchObject({ code: 0, stdout: 'times [0] offset 0\ntimes [0] offset -1\n' });
    const json = await kavka(['cat', '-Q', '-J', ...b(), '-t', 'cat:1:0']);
    expect(JSON.parse(json.stdout)).toEqual({ cat: { topic: 'cat', '1': { partition: 1, offset: 0 } } });
  });

  it('lists metadata as kcat -L -J does', async () => {
    const listed = await kavka(['cat', '-L', '-J', ...b(), '-t', 'cat']);
    expect(JSON.parse(listed.stdout)).toEqual({
      originating_broker: { id: 1, name: `${node.clientAddress}/1` },
      query: { topic: 'cat' },
      controllerid: 1,
      brokers: [{ id: 1, name: node.clientAddress }],
      topics: [{ topic: 'cat', partitions: [0, 1, 2].map((p) => ({ partition: p, leader: 1, replicas: [{ id: 1 }], isrs: [{ id: 1 }] })) }],
    });
    const text = await kavka(['cat', '-L', ...b(), '-t', 'cat']);
    expect(text.stdout.split('\n').slice(0, 5)).toEqual([
      `Metadata for cat (from broker 1: ${node.clientAddress}/1):`,
      ' 1 brokers:',
      `  broker 1 at ${node.clientAddress} (controller)`,
      ' 1 topics:',
      '  topic "cat" with 3 partitions:',
    ]);
  });

  it('stops after -c messages', async () => {
    const consumed = await kavka(['cat', '-C', ...b(), '-t', 'cat', '-c', '5', '-q']);
    expect(consumed.stdout.trimEnd().split('\n')).toHaveLength(5);
  });

  it('refuses an unknown -X key, naming it, with exit code 1', async () => {
    const refused = await kavka(['cat', '-C', ...b(), '-t', 'cat', '-X', 'no.such.setting=1']);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^% ERROR: -X no\.such\.setting: unknown configuration property "no\.such\.setting"/);
  });

  it('accepts known -X keys', async () => {
    const produced = await kavka(['cat', '-P', ...b(), '-t', 'cat', '-X', 'batch.size=1024', '-X', 'linger.ms=0', '-X', 'acks=1', '-X', 'client.id=cli-test'], 'x\n');
    expect(produced.code).toBe(0);
    const consumed = await kavka(['cat', '-C', ...b(), '-t', 'cat', '-X', 'fetch.wait.max.ms=10', '-o', 'end', '-e', '-q']);
    expect(consumed).toMatchObject({ code: 0, stdout: '' });
  });

  it('exits 1 when a record cannot be delivered, and on an unknown topic', async () => {
    const failed = await kavka(['cat', '-P', ...b(), '-t', 'cat', '-p', '9'], 'x\n');
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/UNKNOWN_TOPIC_OR_PARTITION/);
    const unknown = await kavka(['cat', '-C', ...b(), '-t', 'no-such-topic', '-e']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^% ERROR: Topic no-such-topic error: UNKNOWN_TOPIC_OR_PARTITION/);
  });
});
