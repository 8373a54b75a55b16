// kcat's output formats (pure; no broker).
import { describe, expect, it } from 'vitest';
import {
  formatMessage,
  formatMessageJson,
  formatMetadataJson,
  formatMetadataText,
  formatQueryJson,
  formatQueryText,
  parseDelimiter,
  parseFormat,
} from '../../src/cli/cat-format.js';
import { renderProgress } from '../../src/cli/progress.js';
import type { KafkaMessage, MetadataSnapshot } from '../../src/client/index.js';

function message(overrides: Partial<KafkaMessage> = {}): KafkaMessage {
  return {
    offset: '42',
    timestamp: '1700000000000',
    timestampType: 'CreateTime',
    key: Buffer.from('k1'),
    value: Buffer.from('hello'),
    headers: {},
    headerList: [],
    size: 7,
    ...overrides,
  };
}

const context = { topic: 'orders', partition: 2, nullString: undefined };

describe('-f format', () => {
  it('expands every kcat token', () => {
    const tokens = parseFormat('%t|%p|%o|%k|%K|%s|%S|%T|%h|%%\\n');
    const m = message({ headerList: [{ key: 'a', value: Buffer.from('1') }, { key: 'b', value: null }] });
    expect(formatMessage(tokens, m, context).toString()).toBe('orders|2|42|k1|2|hello|5|1700000000000|a=1,b=NULL|%\n');
  });

  it('prints -1 lengths and nothing for null fields, or -Z NULL', () => {
    const tokens = parseFormat('[%k][%K][%s][%S]');
    const m = message({ key: null, value: null });
    expect(formatMessage(tokens, m, context).toString()).toBe('[][-1][][-1]');
    expect(formatMessage(tokens, m, { ...context, nullString: Buffer.from('NULL') }).toString()).toBe('[NULL][-1][NULL][-1]');
  });

  it('writes %R as a 4-byte big-endian length', () => {
    expect(formatMessage(parseFormat('%R%s'), message(), context)).toEqual(Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('hello')]));
  });

  it('handles \\t, \\xHH and decimal escapes in literal text', () => {
    expect(formatMessage(parseFormat('a\\tb\\x41\\65'), message(), context).toString()).toBe('a\tbAA');
  });

  it('refuses an unknown token', () => {
    expect(() => parseFormat('%z')).toThrow('unsupported formatter %z');
  });

  it('parses kcat delimiters', () => {
    expect(parseDelimiter('\\n')).toEqual(Buffer.from('\n'));
    expect(parseDelimiter('--\\x00--')).toEqual(Buffer.from([0x2d, 0x2d, 0, 0x2d, 0x2d]));
  });
});

describe('-J message', () => {
  it('has kcat keys in kcat order, headers only when present', () => {
    const line = formatMessageJson(message(), { topic: 'orders', partition: 2, brokerId: 1 }, Buffer.from('\n')).toString();
    expect(line).toBe('{"topic":"orders","partition":2,"offset":42,"tstype":"create","ts":1700000000000,"broker":1,"key":"k1","payload":"hello"}\n');
  });

  it('writes headers as alternating strings, null values and log-append time', () => {
    const m = message({ key: null, value: null, timestampType: 'LogAppendTime', headerList: [{ key: 'a', value: Buffer.from('1') }, { key: 'b', value: null }] });
    expect(JSON.parse(formatMessageJson(m, { topic: 't', partition: 0, brokerId: 3 }, Buffer.from('\n')).toString())).toEqual({
      topic: 't',
      partition: 0,
      offset: 42,
      tstype: 'logappend',
      ts: 1700000000000,
      broker: 3,
      headers: ['a', '1', 'b', null],
      key: null,
      payload: null,
    });
  });
});

const snapshot: MetadataSnapshot = {
  clusterId: 'c',
  controllerId: 1,
  answeringNodeId: 1,
  answeringAddress: '127.0.0.1:9092',
  brokers: [
    { nodeId: 1, host: '127.0.0.1', port: 9092, rack: '', address: '127.0.0.1:9092' },
    { nodeId: 2, host: '127.0.0.1', port: 9093, rack: '', address: '127.0.0.1:9093' },
  ],
  topics: [
    {
      name: 'orders',
      errorCode: 'NONE',
      errorMessage: '',
      isInternal: false,
      partitions: [
        { partition: 0, errorCode: 'NONE', leader: 1, leaderEpoch: 0, replicas: [1, 2], isr: [1, 2], offlineReplicas: [] },
        { partition: 1, errorCode: 'LEADER_NOT_AVAILABLE', leader: -1, leaderEpoch: 0, replicas: [2], isr: [], offlineReplicas: [] },
      ],
    },
  ],
};

describe('-L metadata', () => {
  it('prints kcat text', () => {
    expect(formatMetadataText(snapshot, undefined)).toBe(
      [
        'Metadata for all topics (from broker 1: 127.0.0.1:9092/1):',
        ' 2 brokers:',
        '  broker 1 at 127.0.0.1:9092 (controller)',
        '  broker 2 at 127.0.0.1:9093',
        ' 1 topics:',
        '  topic "orders" with 2 partitions:',
        '    partition 0, leader 1, replicas: 1,2, isrs: 1,2',
        '    partition 1, leader -1, replicas: 2, isrs: , Broker: Leader not available',
        '',
      ].join('\n'),
    );
  });

  it('prints kcat JSON with the exact keys', () => {
    const json = formatMetadataJson(snapshot, 'orders');
    expect(json.endsWith('\n')).toBe(true);
    expect(JSON.parse(json)).toEqual({
      originating_broker: { id: 1, name: '127.0.0.1:9092/1' },
      query: { topic: 'orders' },
      controllerid: 1,
      brokers: [
        { id: 1, name: '127.0.0.1:9092' },
        { id: 2, name: '127.0.0.1:9093' },
      ],
      topics: [
        {
          topic: 'orders',
          partitions: [
            { partition: 0, leader: 1, replicas: [{ id: 1 }, { id: 2 }], isrs: [{ id: 1 }, { id: 2 }] },
            { partition: 1, error: 'Broker: Leader not available', leader: -1, replicas: [{ id: 2 }], isrs: [] },
          ],
        },
      ],
    });
  });
});

describe('-Q offsets', () => {
  const list = [
    { topic: 'b', partition: 0, offset: '7' },
    { topic: 'a', partition: 1, offset: '-1' },
    { topic: 'a', partition: 0, offset: '3', error: 'UNKNOWN_TOPIC_OR_PARTITION' as const },
  ];

  it('prints kcat text sorted by topic and partition', () => {
    expect(formatQueryText(list)).toBe('a [0] offset 3: Broker: Unknown topic or partition\na [1] offset -1\nb [0] offset 7\n');
  });

  it('prints kcat JSON with "topic" before the partitions', () => {
    expect(formatQueryJson(list)).toBe(
      '{"a":{"topic":"a","0":{"partition":0,"offset":3,"error":"Broker: Unknown topic or partition"},"1":{"partition":1,"offset":-1}},' +
        '"b":{"topic":"b","0":{"partition":0,"offset":7}}}\n',
    );
  });
});

describe('progress line', () => {
  it('shows a bar with a known total and counts without one', () => {
    expect(renderProgress({ label: 'p', done: 50, total: 100, unit: 'messages', elapsedMs: 1000 }, 80)).toBe('p [###############---------------]  50% 50/100 50/s');
    expect(renderProgress({ label: 'p', done: 20_000, total: undefined, unit: 'messages', elapsedMs: 2000 }, 80)).toBe('p 20.0k msgs 10.0k/s');
  });
});
