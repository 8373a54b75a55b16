import { describe, expect, it } from 'vitest';
import { buildBrokerConfig, envKeyFor, loadBrokerConfig, parseProperties } from '../../src/config/index.js';
import { KavkaError } from '../../src/util/errors.js';

function configError(fn: () => unknown): KavkaError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(KavkaError);
    return error as KavkaError;
  }
  throw new Error('expected a config error');
}

describe('broker config', () => {
  it('has the embedded defaults npm start relies on', () => {
    const config = buildBrokerConfig({});
    expect(config.nodeId).toBe(1);
    expect(config.listeners).toEqual([
      { name: 'CLIENT', host: '127.0.0.1', port: 9092 },
      { name: 'INTERNAL', host: '127.0.0.1', port: 9192 },
    ]);
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 9644 });
    expect(config.get('message.max.bytes')).toBe(1048588);
    expect(config.get('log.flush.policy')).toBe('batch');
    expect(config.retentionMs).toBe(168 * 3_600_000);
  });

  it('applies precedence: override over environment over file over default', () => {
    const file = parseProperties('num.partitions=2\nlog.segment.bytes=100000\n# comment\nlog.retention.bytes: 5000\n');
    const env = { [envKeyFor('num.partitions')]: '3', [envKeyFor('log.segment.bytes')]: '200000' };
    const config = buildBrokerConfig({ file, env, overrides: new Map([['num.partitions', '4']]) });
    expect(config.get('num.partitions')).toBe(4);
    expect(config.sources.get('num.partitions')).toBe('override');
    expect(config.get('log.segment.bytes')).toBe(200000);
    expect(config.sources.get('log.segment.bytes')).toBe('env');
    expect(config.get('log.retention.bytes')).toBe(5000);
    expect(config.sources.get('log.retention.bytes')).toBe('file');
  });

  it('takes log.retention.ms over minutes over hours, as Kafka does', () => {
    expect(buildBrokerConfig({ overrides: new Map([['log.retention.hours', '1']]) }).retentionMs).toBe(3_600_000);
    expect(buildBrokerConfig({ overrides: new Map([['log.retention.minutes', '2'], ['log.retention.hours', '1']]) }).retentionMs).toBe(120_000);
    expect(buildBrokerConfig({ overrides: new Map([['log.retention.ms', '5'], ['log.retention.minutes', '2']]) }).retentionMs).toBe(5);
    expect(buildBrokerConfig({ overrides: new Map([['log.retention.hours', '-1']]) }).retentionMs).toBe(-1);
  });

  it('rejects an unknown key, naming it, wherever it comes from', () => {
    expect(configError(() => buildBrokerConfig({ file: new Map([['log.retention.horus', '1']]) })).message).toContain('log.retention.horus');
    expect(configError(() => buildBrokerConfig({ env: { KAVKA_NUM_PARTITONS: '1' } })).message).toContain('KAVKA_NUM_PARTITONS');
    expect(configError(() => loadBrokerConfig({ overrides: ['bogus.key=1'] })).message).toContain('bogus.key');
  });

  it('rejects a bad value, naming the key and what it expects', () => {
    const error = configError(() => buildBrokerConfig({ overrides: new Map([['num.partitions', 'three']]) }));
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain('num.partitions');
    expect(configError(() => buildBrokerConfig({ overrides: new Map([['num.partitions', '0']]) })).message).toContain('num.partitions');
    expect(configError(() => buildBrokerConfig({ overrides: new Map([['log.flush.policy', 'sometimes']]) })).message).toContain('batch, os');
    expect(configError(() => buildBrokerConfig({ overrides: new Map([['auto.create.topics.enable', 'yes']]) })).message).toContain('auto.create.topics.enable');
  });

  it('checks listeners: a CLIENT listener, known names, well-formed addresses', () => {
    expect(configError(() => buildBrokerConfig({ overrides: new Map([['listeners', 'INTERNAL://127.0.0.1:9192']]) })).message).toContain('CLIENT');
    expect(configError(() => buildBrokerConfig({ overrides: new Map([['listeners', 'CLIENT://127.0.0.1']]) })).message).toContain('listeners');
    expect(configError(() => buildBrokerConfig({ overrides: new Map([['advertised.listeners', 'OTHER://x:1']]) })).message).toContain('advertised.listeners');
    const config = buildBrokerConfig({ overrides: new Map([['advertised.listeners', 'CLIENT://kavka-1:9092']]) });
    expect(config.advertisedListeners[0]).toEqual({ name: 'CLIENT', host: 'kavka-1', port: 9092 });
    expect(config.advertisedListeners[1]).toEqual({ name: 'INTERNAL', host: '127.0.0.1', port: 9192 });
  });
});
