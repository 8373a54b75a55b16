// kcat's flags as kavka cat parses them (pure; no broker).
import { describe, expect, it } from 'vitest';
import { parseCatArgs, parseOffset, parseQuery } from '../../src/cli/cat-options.js';
import { getopt, parseLongOptions } from '../../src/cli/getopt.js';
import { parseReplicaAssignment, parseConfigs, formatTopicDescription } from '../../src/cli/topic-command.js';
import { DelimitedSplitter, splitKey } from '../../src/cli/delimited-splitter.js';

const tty = { stdinIsTTY: true };
const pipe = { stdinIsTTY: false };

describe('getopt', () => {
  it('bundles flags, joins values and permutes positionals like GNU getopt', () => {
    expect(getopt(['-Ce', '-tfoo', 'file.txt', '-p', '3'], 'Cet:p:')).toEqual({
      options: [
        { letter: 'C', value: undefined },
        { letter: 'e', value: undefined },
        { letter: 't', value: 'foo' },
        { letter: 'p', value: '3' },
      ],
      positionals: ['file.txt'],
    });
  });

  it('refuses an unknown option and a missing value', () => {
    expect(() => getopt(['-x'], 'C')).toThrow('unknown option -x');
    expect(() => getopt(['-t'], 't:')).toThrow('option -t needs a value');
  });

  it('parses long options with = or a separate value, and repeats', () => {
    const parsed = parseLongOptions(['x', '--config=a=1', '--config', 'b=2', '-b', 'h:1', '--if-not-exists'], [
      { name: 'config', takesValue: true, repeatable: true },
      { name: 'bootstrap-server', alias: '-b', takesValue: true },
      { name: 'if-not-exists', takesValue: false },
    ]);
    expect(parsed.values.get('config')).toEqual(['a=1', 'b=2']);
    expect(parsed.values.get('bootstrap-server')).toEqual(['h:1']);
    expect(parsed.flags.has('if-not-exists')).toBe(true);
    expect(parsed.positionals).toEqual(['x']);
  });
});

describe('kavka cat options', () => {
  it('consumes from the beginning by default, with value + newline output', () => {
    const o = parseCatArgs(['-C', '-b', 'h:1', '-t', 't'], tty);
    expect(o.mode).toBe('C');
    expect(o.brokers).toEqual(['h:1']);
    expect(o.start).toEqual({ kind: 'beginning' });
    expect(o.format).toEqual([{ kind: 'value' }, { kind: 'text', bytes: Buffer.from('\n') }]);
  });

  it('chooses the producer when stdin is not a terminal and no mode is given', () => {
    expect(parseCatArgs(['-t', 't'], pipe)).toMatchObject({ mode: 'P', modeAutoSelected: true });
    expect(parseCatArgs(['-t', 't'], tty)).toMatchObject({ mode: 'C', modeAutoSelected: true });
  });

  it('defaults the bootstrap server to 127.0.0.1:9092', () => {
    expect(parseCatArgs(['-L'], tty).brokers).toEqual(['127.0.0.1:9092']);
  });

  it('refuses mixed modes', () => {
    expect(() => parseCatArgs(['-C', '-P', '-t', 't'], tty)).toThrow('do not mix modes');
  });

  it('parses every -o form', () => {
    expect(parseOffset('beginning')).toEqual({ start: { kind: 'beginning' } });
    expect(parseOffset('end')).toEqual({ start: { kind: 'end' } });
    expect(parseOffset('42')).toEqual({ start: { kind: 'absolute', offset: 42n } });
    expect(parseOffset('-10')).toEqual({ start: { kind: 'tail', count: 10n } });
    expect(parseOffset('s@1700000000000')).toEqual({ start: { kind: 'timestamp', timestamp: 1700000000000n } });
    expect(parseOffset('e@1700000000000')).toEqual({ stopTimestamp: 1700000000000n });
    expect(() => parseOffset('soon')).toThrow('-o soon');
  });

  it('refuses -o stored: there are no consumer groups yet', () => {
    expect(() => parseCatArgs(['-C', '-t', 't', '-o', 'stored'], tty)).toThrow('consumer groups');
  });

  it('builds the key-delimited default format with -K', () => {
    const o = parseCatArgs(['-C', '-t', 't', '-K', ':', '-D', '\\t'], tty);
    expect(o.format).toEqual([{ kind: 'key' }, { kind: 'text', bytes: Buffer.from(':') }, { kind: 'value' }, { kind: 'text', bytes: Buffer.from('\t') }]);
  });

  it('parses -Q topic:partition:timestamp triples', () => {
    const o = parseCatArgs(['-Q', '-t', 'a:0:1000', '-t', 'my:topic:2:-1'], tty);
    expect(o.queries).toEqual([
      { topic: 'a', partition: 0, timestamp: 1000n },
      { topic: 'my:topic', partition: 2, timestamp: -1n },
    ]);
    expect(() => parseQuery('a:b')).toThrow('topic:partition:offset_or_timestamp');
  });

  it('collects -H headers, -l, files and -z', () => {
    const o = parseCatArgs(['-P', '-t', 't', '-H', 'a=1', '-H', 'flag', '-l', 'in.txt', '-z', 'gzip', '-p', '2'], pipe);
    expect(o.headers).toEqual([
      { key: 'a', value: Buffer.from('1') },
      { key: 'flag', value: null },
    ]);
    expect(o).toMatchObject({ lineMode: true, files: ['in.txt'], partition: 2 });
    expect(o.settings.compression).toBe('gzip');
  });

  it('refuses snappy, which Kavka does not implement', () => {
    expect(() => parseCatArgs(['-P', '-t', 't', '-z', 'snappy'], pipe)).toThrow('UNSUPPORTED_COMPRESSION_TYPE');
  });

  it('applies known -X keys and names an unknown one', () => {
    const o = parseCatArgs(['-P', '-t', 't', '-X', 'batch.size=65536', '-X', 'linger.ms=20', '-X', 'acks=all', '-X', 'client.id=me', '-X', 'topic.request.required.acks=1'], pipe);
    expect(o.settings).toMatchObject({ batchSizeBytes: 65536, lingerMs: 20, acks: 1, clientId: 'me' });
    expect(() => parseCatArgs(['-C', '-t', 't', '-X', 'no.such.key=1'], tty)).toThrow('-X no.such.key: unknown configuration property "no.such.key"');
    expect(() => parseCatArgs(['-C', '-t', 't', '-X', 'fetch.wait.max.ms=soon'], tty)).toThrow('-X fetch.wait.max.ms=soon: expected an integer');
    expect(() => parseCatArgs(['-C', '-t', 't', '-X', 'novalue'], tty)).toThrow('expected -X property=value');
  });

  it('needs a topic for -C and -P', () => {
    expect(() => parseCatArgs(['-C'], tty)).toThrow('-t <topic> missing');
  });
});

describe('input splitting', () => {
  it('splits across chunk boundaries, drops empty messages and keeps the tail', () => {
    const splitter = new DelimitedSplitter(Buffer.from('\n'), 1_000);
    expect(splitter.push(Buffer.from('a\nb')).map(String)).toEqual(['a']);
    expect(splitter.push(Buffer.from('c\n\n')).map(String)).toEqual(['bc']);
    expect(splitter.push(Buffer.from('tail')).map(String)).toEqual([]);
    expect(splitter.end().map(String)).toEqual(['tail']);
  });

  it('splits on a multi-byte delimiter', () => {
    const splitter = new DelimitedSplitter(Buffer.from('||'), 1_000);
    expect(splitter.push(Buffer.from('a||b|')).map(String)).toEqual(['a']);
    expect(splitter.push(Buffer.from('|c')).map(String)).toEqual(['b']);
    expect(splitter.end().map(String)).toEqual(['c']);
  });

  it('bounds a message without a delimiter', () => {
    const splitter = new DelimitedSplitter(Buffer.from('\n'), 4);
    expect(() => splitter.push(Buffer.from('12345'))).toThrow('longer than 4 bytes');
  });

  it('splits the key at the first key delimiter only', () => {
    expect(splitKey(Buffer.from('k:v:w'), Buffer.from(':'), false)).toEqual({ key: Buffer.from('k'), value: Buffer.from('v:w') });
    expect(splitKey(Buffer.from('no key'), Buffer.from(':'), false)).toBeUndefined();
    expect(splitKey(Buffer.from(':v'), Buffer.from(':'), true)).toEqual({ key: null, value: Buffer.from('v') });
  });
});

describe('kavka topic helpers', () => {
  it('parses kafka-topics replica assignments', () => {
    expect(parseReplicaAssignment('1:2,2:3,3:1')).toEqual([
      { partition: 0, replicas: [1, 2] },
      { partition: 1, replicas: [2, 3] },
      { partition: 2, replicas: [3, 1] },
    ]);
    expect(() => parseReplicaAssignment('1:x')).toThrow('"x" is not a broker id');
    expect(() => parseReplicaAssignment('1:1')).toThrow('names a broker twice');
  });

  it('parses --config pairs with = in the value', () => {
    expect(parseConfigs(['retention.ms=1000', 'a=b=c'])).toEqual([
      { name: 'retention.ms', value: '1000' },
      { name: 'a', value: 'b=c' },
    ]);
    expect(() => parseConfigs(['nokey'])).toThrow('expected key=value');
  });

  it('describes a topic as kafka-topics does', () => {
    const text = formatTopicDescription(
      {
        name: 'orders',
        isInternal: false,
        partitions: [
          { partitionErrorCode: 0, partitionId: 0, leader: 1, leaderEpoch: 0, replicas: [1, 2], isr: [1, 2], offlineReplicas: [] },
          { partitionErrorCode: 5, partitionId: 1, leader: -1, leaderEpoch: 0, replicas: [2, 1], isr: [], offlineReplicas: [] },
        ],
      },
      [{ name: 'retention.ms', value: '1000' }],
    );
    expect(text).toBe(
      'Topic: orders\tPartitionCount: 2\tReplicationFactor: 2\tConfigs: retention.ms=1000\n' +
        '\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1,2\n' +
        '\tTopic: orders\tPartition: 1\tLeader: none\tReplicas: 2,1\tIsr: \n',
    );
  });
});
