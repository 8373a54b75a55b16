// Broker configuration: Kafka's key names where Kafka has them, parsed and checked up front.
// Precedence: --override k=v > KAVKA_<KEY_IN_UPPER_SNAKE> environment > properties file > default.
// Unknown keys and bad values stop start-up with a message naming the key.
import { readFileSync } from 'node:fs';
import { KavkaError } from '../util/errors.js';
import { readProperties } from '../util/properties.js';
import { INT32_MAX, parseBoolean, parseChoice, parseInteger, parseString } from '../util/config-values.js';

import type { ConfigValue } from '../util/config-values.js';

export type { ConfigValue };

interface KeySpec {
  readonly doc: string;
  readonly default: string;
  readonly parse: (raw: string, key: string) => ConfigValue;
}


/** Every broker key Kavka knows. Keys not listed here are rejected. */
export const BROKER_CONFIG_KEYS = {
  'node.id': { doc: 'This node\'s id (1..).', default: '1', parse: parseInteger(0, INT32_MAX) },
  'cluster.id': { doc: 'Cluster id written to meta.properties on first start; a mismatch stops start-up.', default: 'kavka-local', parse: parseString },
  listeners: { doc: 'Named listeners NAME://host:port, comma separated.', default: 'CLIENT://127.0.0.1:9092,INTERNAL://127.0.0.1:9192', parse: parseString },
  'advertised.listeners': { doc: 'Endpoints given to clients per listener; empty = listeners.', default: '', parse: parseString },
  'inter.broker.listener.name': { doc: 'Listener other nodes use to reach this one.', default: 'INTERNAL', parse: parseString },
  'admin.listener': { doc: 'host:port of the admin HTTP server (/healthz, /readyz, /metrics).', default: '127.0.0.1:9644', parse: parseString },
  'log.dirs': { doc: 'Data directory (one); empty = ./data/node-<node.id>.', default: '', parse: parseString },
  'metadata.log.dir': { doc: 'Directory of the metadata log (the Raft store, in its __kavka_metadata subdirectory); empty = log.dirs. On a disk of its own, a full or failing data disk only takes the log dir offline, while a failure of this one halts the node.', default: '', parse: parseString },
  'log.level': { doc: 'Log level: trace, debug, info, warn, error, fatal, silent.', default: 'info', parse: parseChoice('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent') },
  'num.partitions': { doc: 'Partitions of an auto-created topic or of a create without a count.', default: '1', parse: parseInteger(1, 100_000) },
  'default.replication.factor': { doc: 'Replication factor of a create without one.', default: '1', parse: parseInteger(1, 32_767) },
  'min.insync.replicas': { doc: 'Fewest in-sync replicas an acks=all produce needs.', default: '1', parse: parseInteger(1, 32_767) },
  'auto.create.topics.enable': { doc: 'Create a topic on first produce or metadata request for it.', default: 'true', parse: parseBoolean },
  'delete.topic.enable': { doc: 'Allow DeleteTopics.', default: 'true', parse: parseBoolean },
  'log.segment.bytes': { doc: 'Roll a segment at this size.', default: '1073741824', parse: parseInteger(1024 * 14, INT32_MAX) },
  'log.roll.ms': { doc: 'Roll a segment this old; empty = log.roll.hours.', default: '', parse: (raw, key) => (raw.trim() === '' ? '' : parseInteger(1)(raw, key)) },
  'log.roll.hours': { doc: 'Roll a segment this old, in hours.', default: '168', parse: parseInteger(1, INT32_MAX) },
  'log.retention.ms': { doc: 'Keep data this long (-1 = forever); overrides minutes and hours.', default: '', parse: (raw, key) => (raw.trim() === '' ? '' : parseInteger(-1)(raw, key)) },
  'log.retention.minutes': { doc: 'Keep data this long, in minutes; overrides hours.', default: '', parse: (raw, key) => (raw.trim() === '' ? '' : parseInteger(-1, INT32_MAX)(raw, key)) },
  'log.retention.hours': { doc: 'Keep data this long, in hours.', default: '168', parse: parseInteger(-1, INT32_MAX) },
  'log.retention.bytes': { doc: 'Keep at most this many bytes per partition (-1 = no limit).', default: '-1', parse: parseInteger(-1) },
  'log.retention.messages': { doc: 'Keep at most this many records per partition (-1 = no limit); Kavka only.', default: '-1', parse: parseInteger(-1) },
  'log.retention.check.interval.ms': { doc: 'How often retention runs.', default: '300000', parse: parseInteger(1, INT32_MAX) },
  'log.index.interval.bytes': { doc: 'Bytes between sparse offset index entries.', default: '4096', parse: parseInteger(0, INT32_MAX) },
  'log.dir.offline.probe.interval.ms': { doc: 'While the log dir is offline (a write or fsync error, or a corrupt batch), how often a small file is written, fsynced and deleted in it; once that works the node reopens the dir through recovery; Kavka only.', default: '10000', parse: parseInteger(10, INT32_MAX) },
  'log.recovery.verify.sealed.segments': { doc: 'When opening a partition CRC-checks every batch of its sealed segments: always, unclean (after a crash or an offline log dir), or never; a corrupt batch is repaired and re-fetched; Kavka only.', default: 'unclean', parse: parseChoice('always', 'unclean', 'never') },
  'log.flush.policy': { doc: 'batch: fsync (group commit) before acknowledging; os: leave it to the page cache.', default: 'batch', parse: parseChoice('batch', 'os') },
  'log.message.timestamp.type': { doc: 'CreateTime or LogAppendTime.', default: 'CreateTime', parse: parseChoice('CreateTime', 'LogAppendTime') },
  'producer.id.expiration.ms': { doc: 'Forget an idempotent producer idle this long; its next batch then gets UNKNOWN_PRODUCER_ID unless it starts over at sequence 0.', default: '86400000', parse: parseInteger(1, INT32_MAX) },
  'message.max.bytes': { doc: 'Largest record batch accepted.', default: '1048588', parse: parseInteger(0, INT32_MAX) },
  'fetch.max.bytes': { doc: 'Largest fetch response; larger requests are clamped.', default: '57671680', parse: parseInteger(1024, INT32_MAX) },
  'fetch.max.wait.ms.limit': { doc: 'Longest long-poll a fetch may ask for; Kavka only.', default: '30000', parse: parseInteger(0, INT32_MAX) },
  'shutdown.timeout.ms': { doc: 'Bound on a controlled shutdown; Kavka only.', default: '10000', parse: parseInteger(0, INT32_MAX) },
  'debug.fault.injection.enable': { doc: 'Lets POST /debug/storage-fault on the admin port make log dir writes (or, with "store":"metadata", the metadata log) fail (ENOSPC, EIO), for `npm run chaos`; never enable it in production. Kavka only.', default: 'false', parse: parseBoolean },
  'replica.lag.time.max.ms': { doc: 'A follower that has not caught up with the leader for this long leaves the ISR.', default: '30000', parse: parseInteger(10, INT32_MAX) },
  'replica.fetch.wait.max.ms': { doc: 'Longest a follower fetch waits at the leader for new data.', default: '500', parse: parseInteger(0, INT32_MAX) },
  'replica.fetch.min.bytes': { doc: 'Bytes a follower fetch waits for before the leader answers.', default: '1', parse: parseInteger(1, INT32_MAX) },
  'replica.fetch.max.bytes': { doc: 'Bytes a follower fetches per partition per request (one whole batch at least).', default: '1048576', parse: parseInteger(1024, INT32_MAX) },
  'replica.fetch.response.max.bytes': { doc: 'Bytes a follower fetches per request over all partitions.', default: '10485760', parse: parseInteger(1024, INT32_MAX) },
  'replica.fetch.backoff.ms': { doc: 'How long a follower waits after a failed fetch.', default: '1000', parse: parseInteger(0, INT32_MAX) },
  'broker.rack': { doc: 'Rack (or zone) of this broker; when every broker has one, replicas are spread across racks.', default: '', parse: parseString },
  'process.roles': { doc: 'broker,controller (a controller voter that also serves data) or broker (serves data, follows the metadata log without voting).', default: 'broker,controller', parse: parseRoles },
  'controller.quorum.voters': { doc: 'Controller voters id@host:port (their controller listener), comma separated; only bootstraps a new cluster. Empty = this node alone.', default: '', parse: parseString },
  'controller.listener.names': { doc: 'Listener that carries Raft and controller requests between nodes.', default: 'INTERNAL', parse: parseString },
  'peer.address.overrides': { doc: 'id@host:port per peer: where this node connects to reach that node (e.g. through a test proxy); Kavka only.', default: '', parse: parseString },
  'controller.quorum.election.timeout.ms': { doc: 'Raft election timeout (randomized between 1x and 2x).', default: '1000', parse: parseInteger(20, INT32_MAX) },
  'broker.session.timeout.ms': { doc: 'A broker silent this long is fenced and its partitions elect new leaders.', default: '9000', parse: parseInteger(100, INT32_MAX) },
  'broker.heartbeat.interval.ms': { doc: 'How often a broker heartbeats to the active controller.', default: '2000', parse: parseInteger(10, INT32_MAX) },
  'unclean.leader.election.enable': { doc: 'Let a replica outside the ISR lead when no ISR member is alive (may lose acknowledged data).', default: 'false', parse: parseBoolean },
  'auto.leader.rebalance.enable': { doc: 'Move leadership back to the preferred replica once it is in the ISR again.', default: 'true', parse: parseBoolean },
  'leader.imbalance.check.interval.seconds': { doc: 'How often the controller checks for partitions not led by their preferred replica.', default: '300', parse: parseInteger(1, INT32_MAX) },
  'metadata.log.max.record.bytes.between.snapshots': { doc: 'Snapshot the metadata image after this many bytes of new metadata records.', default: '20971520', parse: parseInteger(1, INT32_MAX) },
} as const satisfies Record<string, KeySpec>;

export type BrokerConfigKey = keyof typeof BROKER_CONFIG_KEYS;

function parseRoles(raw: string, key: string): 'broker,controller' | 'broker' {
  const roles = new Set(raw.split(',').map((r) => r.trim().toLowerCase()).filter((r) => r !== ''));
  for (const role of roles) {
    if (role !== 'broker' && role !== 'controller') throw new KavkaError('INVALID_CONFIG', `config ${key}: unknown role ${JSON.stringify(role)}; use broker,controller or broker`);
  }
  if (roles.size === 0) throw new KavkaError('INVALID_CONFIG', `config ${key} is empty; use broker,controller or broker`);
  if (!roles.has('broker')) throw new KavkaError('INVALID_CONFIG', `config ${key}=${raw}: a controller-only node is not supported; use broker,controller`);
  return roles.has('controller') ? 'broker,controller' : 'broker';
}

/** One `id@host:port` entry of controller.quorum.voters or peer.address.overrides. */
export interface NodeAddress {
  nodeId: number;
  host: string;
  port: number;
}

export function parseNodeAddresses(text: string, key: string): NodeAddress[] {
  if (text.trim() === '') return [];
  const result = text.split(',').map((part) => {
    const match = /^(\d+)@(\[[^\]]+\]|[^:@]+):(\d+)$/.exec(part.trim());
    if (match === null || Number(match[3]) > 65535 || Number(match[3]) === 0 || Number(match[1]) > INT32_MAX) {
      throw new KavkaError('INVALID_CONFIG', `config ${key}: ${JSON.stringify(part.trim())} is not id@host:port`);
    }
    return { nodeId: Number(match[1]), host: match[2], port: Number(match[3]) };
  });
  const ids = result.map((a) => a.nodeId);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice !== undefined) throw new KavkaError('INVALID_CONFIG', `config ${key} names node ${twice} twice`);
  return result;
}

export interface Listener {
  name: string;
  host: string;
  port: number;
}

export interface BrokerConfig {
  /** The raw value of every key after precedence, for DescribeConfigs. */
  readonly values: ReadonlyMap<BrokerConfigKey, ConfigValue>;
  /** Where each value came from. */
  readonly sources: ReadonlyMap<BrokerConfigKey, 'default' | 'file' | 'env' | 'override'>;
  readonly nodeId: number;
  readonly clusterId: string;
  readonly logDir: string;
  /** Where the metadata log's store lives (metadata.log.dir, else logDir). */
  readonly metadataLogDir: string;
  readonly listeners: readonly Listener[];
  readonly advertisedListeners: readonly Listener[];
  readonly admin: { host: string; port: number };
  readonly retentionMs: number;
  readonly rollMs: number;
  /** True when this node is a controller voter (process.roles has controller). */
  readonly isController: boolean;
  /**
   * The bootstrap voters (controller.quorum.voters). Empty config means this node alone, at its
   * controller listener.
   */
  readonly quorumVoters: readonly NodeAddress[];
  /** Listener carrying Raft and controller requests (controller.listener.names). */
  readonly controllerListener: string;
  /** Where to dial each peer instead of its advertised address (peer.address.overrides). */
  readonly peerAddressOverrides: ReadonlyMap<number, string>;
  get<K extends BrokerConfigKey>(key: K): ReturnType<(typeof BROKER_CONFIG_KEYS)[K]['parse']>;
}

export function isBrokerConfigKey(key: string): key is BrokerConfigKey {
  return Object.prototype.hasOwnProperty.call(BROKER_CONFIG_KEYS, key);
}

/** Reads a Java-style .properties file (key=value or key: value, # and ! comments). */
export function readPropertiesFile(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new KavkaError('INVALID_CONFIG', `cannot read config file ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parseProperties(text);
}

export function parseProperties(text: string): Map<string, string> {
  const result = readProperties(text);
  if ('badLine' in result) throw new KavkaError('INVALID_CONFIG', `config line ${JSON.stringify(result.badLine)} is not key=value`);
  return result.properties;
}

/** KAVKA_LOG_RETENTION_MS -> log.retention.ms. Only keys Kavka knows are mapped back. */
export function envKeyFor(key: string): string {
  return `KAVKA_${key.toUpperCase().replace(/\./g, '_')}`;
}

export function parseListeners(text: string, key: string): Listener[] {
  if (text.trim() === '') return [];
  return text.split(',').map((part) => {
    const match = /^([A-Za-z_][A-Za-z0-9_]*):\/\/(\[[^\]]+\]|[^:]*):(\d+)$/.exec(part.trim());
    if (match === null) throw new KavkaError('INVALID_CONFIG', `config ${key}: ${JSON.stringify(part)} is not NAME://host:port`);
    const port = Number(match[3]);
    if (port > 65535) throw new KavkaError('INVALID_CONFIG', `config ${key}: port ${port} is out of range`);
    return { name: match[1].toUpperCase(), host: match[2] === '' ? '0.0.0.0' : match[2], port };
  });
}

function parseHostPort(text: string, key: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text.trim());
  if (match === null || Number(match[2]) > 65535) throw new KavkaError('INVALID_CONFIG', `config ${key}=${JSON.stringify(text)} is not host:port`);
  return { host: match[1], port: Number(match[2]) };
}

export interface ConfigSources {
  file?: Map<string, string>;
  env?: NodeJS.ProcessEnv;
  overrides?: Map<string, string>;
}

export function buildBrokerConfig(sources: ConfigSources): BrokerConfig {
  const values = new Map<BrokerConfigKey, ConfigValue>();
  const origins = new Map<BrokerConfigKey, 'default' | 'file' | 'env' | 'override'>();
  const rejectUnknown = (key: string, where: string): never => {
    throw new KavkaError('INVALID_CONFIG', `unknown config key ${key} (${where}); run \`kavka broker --help-config\` for the list`);
  };
  for (const key of sources.file?.keys() ?? []) if (!isBrokerConfigKey(key)) rejectUnknown(key, 'config file');
  for (const key of sources.overrides?.keys() ?? []) if (!isBrokerConfigKey(key)) rejectUnknown(key, '--override');
  const knownEnv = new Set((Object.keys(BROKER_CONFIG_KEYS) as BrokerConfigKey[]).map(envKeyFor));
  for (const name of Object.keys(sources.env ?? {})) {
    if (name.startsWith('KAVKA_') && !knownEnv.has(name)) rejectUnknown(name, 'environment');
  }

  for (const key of Object.keys(BROKER_CONFIG_KEYS) as BrokerConfigKey[]) {
    const spec: KeySpec = BROKER_CONFIG_KEYS[key];
    let raw = spec.default;
    let origin: 'default' | 'file' | 'env' | 'override' = 'default';
    const fromFile = sources.file?.get(key);
    if (fromFile !== undefined) [raw, origin] = [fromFile, 'file'];
    const fromEnv = sources.env?.[envKeyFor(key)];
    if (fromEnv !== undefined) [raw, origin] = [fromEnv, 'env'];
    const fromOverride = sources.overrides?.get(key);
    if (fromOverride !== undefined) [raw, origin] = [fromOverride, 'override'];
    values.set(key, spec.parse(raw, key));
    origins.set(key, origin);
  }
  const get = <K extends BrokerConfigKey>(key: K) => values.get(key) as ReturnType<(typeof BROKER_CONFIG_KEYS)[K]['parse']>;

  const listeners = parseListeners(get('listeners'), 'listeners');
  if (listeners.length === 0) throw new KavkaError('INVALID_CONFIG', 'config listeners is empty: give at least CLIENT://host:port');
  const names = new Set(listeners.map((l) => l.name));
  if (names.size !== listeners.length) throw new KavkaError('INVALID_CONFIG', 'config listeners names a listener twice');
  if (!names.has('CLIENT')) throw new KavkaError('INVALID_CONFIG', 'config listeners has no CLIENT listener; clients connect to it');
  const interBroker = get('inter.broker.listener.name').toUpperCase();
  if (!names.has(interBroker)) throw new KavkaError('INVALID_CONFIG', `config inter.broker.listener.name=${interBroker} names no listener in listeners`);
  const advertised = parseListeners(get('advertised.listeners'), 'advertised.listeners');
  for (const a of advertised) {
    if (!names.has(a.name)) throw new KavkaError('INVALID_CONFIG', `config advertised.listeners names ${a.name}, which is not in listeners`);
  }
  const advertisedListeners = listeners.map((l) => advertised.find((a) => a.name === l.name) ?? l);

  const retentionMsRaw = get('log.retention.ms');
  const retentionMinutes = get('log.retention.minutes');
  const retentionHours = get('log.retention.hours');
  const retentionMs =
    retentionMsRaw !== '' ? Number(retentionMsRaw)
    : retentionMinutes !== '' ? (Number(retentionMinutes) < 0 ? -1 : Number(retentionMinutes) * 60_000)
    : retentionHours < 0 ? -1 : retentionHours * 3_600_000;
  const controllerNames = get('controller.listener.names').split(',').map((n) => n.trim().toUpperCase()).filter((n) => n !== '');
  if (controllerNames.length !== 1) throw new KavkaError('INVALID_CONFIG', `config controller.listener.names=${get('controller.listener.names')}: name exactly one listener`);
  const controllerListener = controllerNames[0];
  const controllerBound = listeners.find((l) => l.name === controllerListener);
  if (controllerBound === undefined) throw new KavkaError('INVALID_CONFIG', `config controller.listener.names=${controllerListener} names no listener in listeners`);
  const isController = get('process.roles') === 'broker,controller';
  let quorumVoters = parseNodeAddresses(get('controller.quorum.voters'), 'controller.quorum.voters');
  if (quorumVoters.length === 0) {
    if (!isController) throw new KavkaError('INVALID_CONFIG', 'config controller.quorum.voters is empty on a broker-only node: name the controller voters (id@host:port)');
    const own = advertisedListeners.find((l) => l.name === controllerListener) ?? controllerBound;
    quorumVoters = [{ nodeId: get('node.id'), host: own.host, port: own.port }];
  }
  const inQuorum = quorumVoters.some((v) => v.nodeId === get('node.id'));
  if (isController && !inQuorum) {
    throw new KavkaError('INVALID_CONFIG', `config controller.quorum.voters does not name node.id=${get('node.id')}; a broker,controller node must be a voter (or set process.roles=broker)`);
  }
  if (!isController && inQuorum) {
    throw new KavkaError('INVALID_CONFIG', `config controller.quorum.voters names node.id=${get('node.id')}, but process.roles=broker; add controller to process.roles`);
  }
  const overrides = parseNodeAddresses(get('peer.address.overrides'), 'peer.address.overrides');
  const peerAddressOverrides = new Map(overrides.map((o) => [o.nodeId, `${o.host}:${o.port}`]));
  if (get('broker.heartbeat.interval.ms') >= get('broker.session.timeout.ms')) {
    throw new KavkaError('INVALID_CONFIG', `config broker.heartbeat.interval.ms=${get('broker.heartbeat.interval.ms')} must be below broker.session.timeout.ms=${get('broker.session.timeout.ms')}`);
  }

  const rollMsRaw = get('log.roll.ms');
  const rollMs = rollMsRaw !== '' ? Number(rollMsRaw) : get('log.roll.hours') * 3_600_000;

  const logDir = get('log.dirs') === '' ? `./data/node-${get('node.id')}` : get('log.dirs');
  return {
    values,
    sources: origins,
    nodeId: get('node.id'),
    clusterId: get('cluster.id'),
    logDir,
    metadataLogDir: get('metadata.log.dir') === '' ? logDir : get('metadata.log.dir'),
    listeners,
    advertisedListeners,
    admin: parseHostPort(get('admin.listener'), 'admin.listener'),
    retentionMs,
    rollMs,
    isController,
    quorumVoters,
    controllerListener,
    peerAddressOverrides,
    get,
  };
}

/** Loads config the way `kavka broker` does: file, then KAVKA_* env, then --override pairs. */
export function loadBrokerConfig(options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: string[] }): BrokerConfig {
  const overrides = new Map<string, string>();
  for (const pair of options.overrides ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new KavkaError('INVALID_CONFIG', `--override ${JSON.stringify(pair)} is not key=value`);
    overrides.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
  }
  return buildBrokerConfig({
    file: options.file === undefined ? undefined : readPropertiesFile(options.file),
    env: options.env,
    overrides,
  });
}

export function describeBrokerConfigKeys(): string {
  return (Object.entries(BROKER_CONFIG_KEYS) as [string, KeySpec][])
    .map(([key, spec]) => `${key.padEnd(34)} default ${JSON.stringify(spec.default).padEnd(52)} ${spec.doc}`)
    .join('\n');
}
