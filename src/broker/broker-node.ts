// Assembles one Kavka node: log dir, controller, replica manager, gRPC listeners, admin HTTP,
// retention. `startBroker` returns once the node serves; `stop` is a bounded clean shutdown
// (listeners closed, appends drained, segments and indexes flushed).
import { randomUUID } from 'node:crypto';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { createLogger, type Logger } from '../util/logger.js';
import { buildBrokerConfig, type BrokerConfig } from '../config/index.js';
import { LocalController, TOPIC_CONFIG_KEYS } from '../controller/index.js';
import { ReplicaManager } from '../replication/index.js';
import { openLogManager, topicPartitionName, type LogConfig, type LogManager, type StorageFs } from '../storage/index.js';
import { AdminHttpServer, BrokerMetrics, GrpcServers, topicDefaults, type BoundListener, type Readiness } from '../server/index.js';

export interface StartBrokerOptions {
  /** A parsed config; or give `overrides` to build one from defaults. */
  config?: BrokerConfig;
  overrides?: Record<string, string>;
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
  newTopicId?: () => string;
  fs?: StorageFs;
}

export interface Broker {
  readonly nodeId: number;
  readonly config: BrokerConfig;
  readonly listeners: readonly BoundListener[];
  /** host:port of the CLIENT listener as bound. */
  readonly clientAddress: string;
  /** host:port of the admin HTTP server as bound. */
  readonly adminAddress: string;
  readonly logManager: LogManager;
  readiness(): Readiness;
  stop(): Promise<void>;
}

/** A topic config's effective value: the topic's override, else the broker's default. */
export function topicConfigValue(config: BrokerConfig, topicConfigs: ReadonlyMap<string, string>, key: keyof typeof TOPIC_CONFIG_KEYS): string {
  return topicConfigs.get(key) ?? topicDefaults({ config })[key];
}

/** Effective log config of a topic: its overrides over the broker's defaults. */
export function logConfigFor(config: BrokerConfig, topicConfigs: ReadonlyMap<string, string>): LogConfig {
  const defaults = topicDefaults({ config });
  const value = (key: keyof typeof TOPIC_CONFIG_KEYS) => topicConfigs.get(key) ?? defaults[key];
  return {
    segmentBytes: Number(value('segment.bytes')),
    segmentMs: Number(value('segment.ms')),
    retentionMs: Number(value('retention.ms')),
    retentionBytes: Number(value('retention.bytes')),
    retentionMessages: Number(value('retention.messages')),
    maxMessageBytes: Number(value('max.message.bytes')),
    indexIntervalBytes: Number(value('index.interval.bytes')),
    flushPolicy: value('flush.policy') === 'os' ? 'os' : 'batch',
    messageTimestampType: value('message.timestamp.type') === 'LogAppendTime' ? 'LogAppendTime' : 'CreateTime',
  };
}

export async function startBroker(options: StartBrokerOptions = {}): Promise<Broker> {
  const config = options.config ?? buildBrokerConfig({ overrides: new Map(Object.entries(options.overrides ?? {})) });
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const logger = (options.logger ?? createLogger({ level: config.get('log.level') })).child({ nodeId: config.nodeId });
  let readiness: Readiness = { ready: false, reason: 'starting' };

  const logManager = await openLogManager({ logDir: config.logDir, nodeId: config.nodeId, clusterId: config.clusterId, clock, logger: logger.child({ component: 'storage' }), fs: options.fs });
  logManager.onOffline((reason) => {
    readiness = { ready: false, reason: `log dir ${config.logDir} is offline: ${reason}` };
    logger.error({ logDir: config.logDir, reason }, 'log dir went offline; partitions on it are not served until the node restarts and recovers it');
  });
  const controller = LocalController.open({
    logDir: config.logDir,
    nodeId: config.nodeId,
    defaultPartitions: config.get('num.partitions'),
    defaultReplicationFactor: config.get('default.replication.factor'),
    deleteTopicEnable: config.get('delete.topic.enable'),
    random,
    newTopicId: options.newTopicId ?? randomUUID,
    logger: logger.child({ component: 'controller' }),
  });
  const replicaManager = new ReplicaManager({
    nodeId: config.nodeId,
    logManager,
    logConfigFor: (topicConfigs) => logConfigFor(config, topicConfigs),
    minInsyncReplicasFor: (topicConfigs) => Number(topicConfigValue(config, topicConfigs, 'min.insync.replicas')),
    clock,
    logger: logger.child({ component: 'replica-manager' }),
  });
  await replicaManager.applyImage(controller.image);
  const unsubscribeImage = controller.onImage((image) => void replicaManager.applyImage(image));

  const metrics = new BrokerMetrics(config.nodeId, () => replicaManager, () => logManager.state.kind === 'offline');
  const servers = new GrpcServers({ nodeId: config.nodeId, config, controller, replicaManager, metrics, clock, logger: logger.child({ component: 'server' }) });
  const admin = new AdminHttpServer(metrics.registry, () => readiness);
  let retentionCancel: (() => void) | undefined;
  let stopped = false;
  try {
    const bound = await servers.listen(config.listeners);
    const endpoints = bound.map((b) => {
      const advertised = config.advertisedListeners.find((a) => a.name === b.name);
      // A listener bound to port 0 advertises the port the OS chose.
      const port = advertised === undefined || advertised.port === 0 ? b.port : advertised.port;
      const host = advertised?.host === '0.0.0.0' || advertised === undefined ? b.host : advertised.host;
      return { name: b.name, host, port };
    });
    await controller.registerBroker(endpoints, undefined);
    const adminPort = await admin.listen(config.admin.host, config.admin.port);

    const retentionIntervalMs = config.get('log.retention.check.interval.ms');
    const scheduleRetention = () => {
      // A pass still running when stop() began must not schedule another.
      if (stopped) return;
      retentionCancel = clock.schedule(retentionIntervalMs, () => {
        void runRetention().finally(scheduleRetention);
      });
    };
    const runRetention = async () => {
      for (const state of replicaManager.allPartitions()) {
        const topicPartition = topicPartitionName(state.topicPartition);
        try {
          const deleted = await state.log.applyRetention(clock.nowMs());
          if (deleted > 0) logger.info({ topicPartition, segmentsDeleted: deleted, logStartOffset: state.log.logStartOffset.toString() }, 'retention deleted segments');
        } catch (error) {
          logger.warn({ err: error, topicPartition }, 'retention failed');
        }
      }
    };
    scheduleRetention();

    if (logManager.state.kind === 'online') readiness = { ready: true };
    servers.setServing(true);
    const client = bound.find((b) => b.name === 'CLIENT');
    const clientAddress = `${client?.host}:${client?.port}`;
    logger.info({ listeners: bound, admin: `${config.admin.host}:${adminPort}`, logDir: config.logDir }, 'node started');

    let stopping: Promise<void> | undefined;
    return {
      nodeId: config.nodeId,
      config,
      listeners: bound,
      clientAddress,
      adminAddress: `${config.admin.host}:${adminPort}`,
      logManager,
      readiness: () => readiness,
      stop: () => {
        stopping ??= (async () => {
          readiness = { ready: false, reason: 'shutting down' };
          logger.info('controlled shutdown started');
          stopped = true;
          retentionCancel?.();
          unsubscribeImage();
          await servers.close(config.get('shutdown.timeout.ms'));
          await replicaManager.close();
          await logManager.close();
          controller.close();
          await admin.close();
          logger.info('node stopped');
        })();
        return stopping;
      },
    };
  } catch (error) {
    stopped = true;
    retentionCancel?.();
    await servers.close(0);
    await admin.close().catch(() => undefined);
    await logManager.close().catch(() => undefined);
    controller.close();
    throw error;
  }
}
