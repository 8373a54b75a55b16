import { describe, expect, it } from 'vitest';
import { buildBrokerConfig, envKeyFor, loadBrokerConfig, parseNodeAddresses, parseProperties } from '../../src/config/index.js';
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

  it('checks the disk-fault keys (Kavka issue 6), naming them', () => {
    const defaults = buildBrokerConfig({});
    expect(defaults.get('log.dir.offline.probe.interval.ms')).toBe(10_000);
    expect(defaults.get('log.recovery.verify.sealed.segments')).toBe('unclean');
    expect(buildBrokerConfig({ overrides: new Map([['log.recovery.verify.sealed.segments', 'always']]) }).get('log.recovery.verify.sealed.segments')).toBe('always');
    expect(configError(() => buildBrokerConfig({ overrides: new Map([['log.dir.offline.probe.interval.ms', '0']]) })).message).toContain('log.dir.offline.probe.interval.ms');
    const choice = configError(() => buildBrokerConfig({ overrides: new Map([['log.recovery.verify.sealed.segments', 'sometimes']]) }));
    expect(choice.message).toContain('log.recovery.verify.sealed.segments');
    expect(choice.message).toContain('always, unclean, never');
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

describe('broker config: cluster keys (process.roles, controller quorum, sessions, overrides)', () => {
  const build = (entries: Record<string, string>) => buildBrokerConfig({ overrides: new Map(Object.entries(entries)) });
  const errorFor = (entries: Record<string, string>) => configError(() => build(entries));

  it('defaults to a combined broker,controller node that is the only voter, at its controller listener', () => {
    const config = buildBrokerConfig({});
    expect(config.get('process.roles')).toBe('broker,controller');
    expect(config.isController).toBe(true);
    expect(config.controllerListener).toBe('INTERNAL');
    expect(config.quorumVoters).toEqual([{ nodeId: 1, host: '127.0.0.1', port: 9192 }]);
    expect(config.peerAddressOverrides.size).toBe(0);
    expect(config.get('broker.session.timeout.ms')).toBe(9000);
    expect(config.get('broker.heartbeat.interval.ms')).toBe(2000);
    expect(config.get('controller.quorum.election.timeout.ms')).toBe(1000);
    expect(config.get('unclean.leader.election.enable')).toBe(false);
    expect(config.get('auto.leader.rebalance.enable')).toBe(true);
    expect(config.get('leader.imbalance.check.interval.seconds')).toBe(300);
    expect(config.get('metadata.log.max.record.bytes.between.snapshots')).toBe(20971520);
  });

  it('puts the default voter at the advertised address of the controller listener, and follows node.id', () => {
    const config = build({ 'node.id': '3', 'advertised.listeners': 'INTERNAL://kavka-3:9194' });
    expect(config.quorumVoters).toEqual([{ nodeId: 3, host: 'kavka-3', port: 9194 }]);
    const viaClient = build({ 'controller.listener.names': 'client' });
    expect(viaClient.controllerListener).toBe('CLIENT');
    expect(viaClient.quorumVoters).toEqual([{ nodeId: 1, host: '127.0.0.1', port: 9092 }]);
  });

  it('parses a voters list', () => {
    const config = build({ 'controller.quorum.voters': '1@127.0.0.1:9192,2@h:9193' });
    expect(config.quorumVoters).toEqual([
      { nodeId: 1, host: '127.0.0.1', port: 9192 },
      { nodeId: 2, host: 'h', port: 9193 },
    ]);
    expect(build({ 'controller.quorum.voters': ' 1@a:1 , 2@[::1]:2 ' }).quorumVoters).toEqual([
      { nodeId: 1, host: 'a', port: 1 },
      { nodeId: 2, host: '[::1]', port: 2 },
    ]);
    expect(parseNodeAddresses('', 'controller.quorum.voters')).toEqual([]);
  });

  it('takes the voters from the environment like any other key', () => {
    const config = buildBrokerConfig({ env: { KAVKA_CONTROLLER_QUORUM_VOTERS: '1@a:9192,2@b:9192', KAVKA_PROCESS_ROLES: 'broker,controller' } });
    expect(config.quorumVoters.map((v) => v.nodeId)).toEqual([1, 2]);
    expect(config.sources.get('controller.quorum.voters')).toBe('env');
  });

  it.each<[string, string]>([
    ['no port', '1@127.0.0.1'],
    ['no id', '@h:9192'],
    ['an id that is not a number', 'one@h:9192'],
    ['a port out of range', '1@h:65536'],
    ['an empty host', '1@:9192'],
    ['a trailing comma', '1@h:9192,'],
    ['host:port without an id', 'h:9192'],
  ])('rejects a voter entry with %s, naming the key', (_what, voters) => {
    const error = errorFor({ 'controller.quorum.voters': voters });
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain('controller.quorum.voters');
    expect(error.message).toContain('id@host:port');
  });

  it('rejects a voters list naming a node twice', () => {
    const error = errorFor({ 'controller.quorum.voters': '1@a:1,2@b:2,1@c:3' });
    expect(error.message).toContain('controller.quorum.voters');
    expect(error.message).toContain('node 1 twice');
  });

  it('rejects a broker,controller node that is not among the voters', () => {
    const error = errorFor({ 'node.id': '3', 'controller.quorum.voters': '1@a:1,2@b:2' });
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain('controller.quorum.voters');
    expect(error.message).toContain('node.id=3');
  });

  it('accepts a broker-only node that is not a voter, and rejects one that is', () => {
    const observer = build({ 'node.id': '4', 'process.roles': 'broker', 'controller.quorum.voters': '1@a:1,2@b:2,3@c:3' });
    expect(observer.isController).toBe(false);
    expect(observer.get('process.roles')).toBe('broker');
    expect(observer.quorumVoters.map((v) => v.nodeId)).toEqual([1, 2, 3]);
    const error = errorFor({ 'node.id': '2', 'process.roles': 'broker', 'controller.quorum.voters': '1@a:1,2@b:2,3@c:3' });
    expect(error.message).toContain('controller.quorum.voters');
    expect(error.message).toContain('process.roles');
  });

  it('rejects a broker-only node with no voters to follow', () => {
    const error = errorFor({ 'process.roles': 'broker' });
    expect(error.message).toContain('controller.quorum.voters');
    expect(error.message).toContain('broker-only');
  });

  it.each<[string, string]>([
    ['controller only', 'controller'],
    ['an unknown role', 'broker,zookeeper'],
    ['a misspelt role', 'brokers'],
  ])('rejects process.roles with %s, naming the key', (_what, roles) => {
    const error = errorFor({ 'process.roles': roles });
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain('process.roles');
  });

  it('names the unknown role', () => {
    expect(errorFor({ 'process.roles': 'broker,zookeeper' }).message).toContain('"zookeeper"');
    expect(errorFor({ 'process.roles': 'controller' }).message).toContain('controller-only');
  });

  it('reads process.roles in any order and case', () => {
    expect(build({ 'process.roles': 'Controller, Broker' }).get('process.roles')).toBe('broker,controller');
    expect(build({ 'process.roles': 'BROKER', 'node.id': '2', 'controller.quorum.voters': '1@a:1' }).isController).toBe(false);
  });

  it('rejects controller.listener.names naming no listener, or more than one', () => {
    const missing = errorFor({ 'controller.listener.names': 'CONTROLLER' });
    expect(missing.message).toContain('controller.listener.names');
    expect(missing.message).toContain('CONTROLLER');
    expect(errorFor({ 'controller.listener.names': 'CLIENT,INTERNAL' }).message).toContain('controller.listener.names');
    expect(errorFor({ 'controller.listener.names': '' }).message).toContain('controller.listener.names');
  });

  it('rejects a heartbeat interval at or above the session timeout, naming both keys', () => {
    for (const interval of ['9000', '9001']) {
      const error = errorFor({ 'broker.heartbeat.interval.ms': interval });
      expect(error.message).toContain('broker.heartbeat.interval.ms');
      expect(error.message).toContain('broker.session.timeout.ms');
    }
    expect(build({ 'broker.session.timeout.ms': '900', 'broker.heartbeat.interval.ms': '899' }).get('broker.session.timeout.ms')).toBe(900);
    expect(errorFor({ 'broker.session.timeout.ms': '99' }).message).toContain('broker.session.timeout.ms');
  });

  it('parses peer.address.overrides into a map of id to host:port', () => {
    const config = build({ 'peer.address.overrides': '2@127.0.0.1:30012,3@127.0.0.1:30013' });
    expect([...config.peerAddressOverrides]).toEqual([
      [2, '127.0.0.1:30012'],
      [3, '127.0.0.1:30013'],
    ]);
    expect(config.peerAddressOverrides.get(2)).toBe('127.0.0.1:30012');
    // Overrides only redirect connections: the voters stay as configured.
    expect(config.quorumVoters).toEqual([{ nodeId: 1, host: '127.0.0.1', port: 9192 }]);
  });

  it('rejects a bad peer.address.overrides entry or a peer named twice, naming the key', () => {
    expect(errorFor({ 'peer.address.overrides': '2@127.0.0.1' }).message).toContain('peer.address.overrides');
    expect(errorFor({ 'peer.address.overrides': '2@a:1,2@b:2' }).message).toContain('peer.address.overrides');
  });

  it('checks the other new keys\' values, naming the key', () => {
    expect(errorFor({ 'unclean.leader.election.enable': 'maybe' }).message).toContain('unclean.leader.election.enable');
    expect(errorFor({ 'auto.leader.rebalance.enable': 'sometimes' }).message).toContain('auto.leader.rebalance.enable');
    expect(errorFor({ 'leader.imbalance.check.interval.seconds': '0' }).message).toContain('leader.imbalance.check.interval.seconds');
    expect(errorFor({ 'controller.quorum.election.timeout.ms': '5' }).message).toContain('controller.quorum.election.timeout.ms');
    expect(errorFor({ 'metadata.log.max.record.bytes.between.snapshots': '0' }).message).toContain('metadata.log.max.record.bytes.between.snapshots');
    expect(build({ 'unclean.leader.election.enable': 'true' }).get('unclean.leader.election.enable')).toBe(true);
  });
});
