// Assembles one Kavka node: log dir, the metadata quorum (Raft + QuorumController), the broker's
// session with the active controller, replica manager, gRPC listeners, admin HTTP, retention.
//
// Start-up order: storage; Raft and the controller (replaying the local metadata log); listeners;
// then registration. Partitions are opened only once this node's metadata has caught up with its
// registration, so a node replaying an old log never acts on (or deletes data because of) a stale
// image. A node that is the whole quorum waits for that before startBroker returns; in a
// multi-node cluster startBroker returns once listening and `waitReady` tells when it serves.
//
// `stop` is a bounded controlled shutdown: fence this broker through the controller (its
// partitions elect other leaders), hand controller leadership to another voter, then close
// listeners, drain appends, flush segments and close the Raft store.
//
// Log dir offline (DESIGN.md section 2, Kavka issue 6): the replica manager stops leading and
// following, heartbeats list the dir so the controller fences this broker for data (it stays a
// Raft voter: the metadata store is not one of the failed logs), and a probe runs every
// log.dir.offline.probe.interval.ms. Once a probe works and the controller has fenced this broker
// (so no ISR counts it while its logs recover), the dir is reopened in place through recovery,
// the partitions reopen as followers, the heartbeats stop listing the dir, and the replicas
// re-enter the ISRs through fetch + AlterPartition. A failed fsync is never retried.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { createLogger, type Logger } from '../util/logger.js';
import { buildBrokerConfig, type BrokerConfig } from '../config/index.js';
import { QuorumController, TOPIC_CONFIG_KEYS, failuresTolerated } from '../controller/index.js';
import { FaultSwitchRaftStorage, GrpcRaftTransport, LevelRaftStorage, RaftNode } from '../raft/index.js';
import { KavkaError } from '../util/errors.js';
import { AlterPartitionRefused, ReplicaManager } from '../replication/index.js';
import { FaultInjectingFs, nodeStorageFs, openLogManager, topicPartitionName, type FsOperation, type LogConfig, type LogManager, type StorageFs } from '../storage/index.js';
import { AdminHttpServer, BrokerMetrics, ControllerChannel, GrpcServers, ProducerIdManager, ReplicationClient, topicDefaults, type BoundListener, type Readiness } from '../server/index.js';
import { BrokerLifecycle } from './broker-lifecycle.js';

export interface StartBrokerOptions {
  /** A parsed config; or give `overrides` to build one from defaults. */
  config?: BrokerConfig;
  overrides?: Record<string, string>;
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
  newTopicId?: () => string;
  fs?: StorageFs;
  /**
   * Called once if the metadata log fails (its store cannot write or read). The node then stops
   * serving for good: its metadata can no longer advance, so it must not act on it. `kavka broker`
   * halts the process here (exit code 3, as Kafka halts), so a supervisor restarts it and
   * start-up recovery runs.
   */
  onFatal?: (error: KavkaError) => void;
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
  readonly controller: QuorumController;
  readiness(): Readiness;
  /** Resolves once the node serves (registered, unfenced, metadata caught up); rejects after timeoutMs. */
  waitReady(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** The Raft store's directory inside the log dir (not a topic-partition name, so never taken for one). */
export const RAFT_DIRECTORY = '__kavka_metadata';
/** The single-node metadata file of earlier versions. */
const LEGACY_METADATA_LOG = 'kavka-metadata.log';

/** Raft timing from controller.quorum.election.timeout.ms: ~10 ticks per election timeout, heartbeats 5x as often. */
export function raftTiming(electionTimeoutMs: number): { tickMs: number; electionTimeoutTicks: number; heartbeatIntervalTicks: number } {
  const tickMs = Math.max(2, Math.min(50, Math.floor(electionTimeoutMs / 10)));
  const electionTimeoutTicks = Math.max(2, Math.round(electionTimeoutMs / tickMs));
  return { tickMs, electionTimeoutTicks, heartbeatIntervalTicks: Math.max(1, Math.floor(electionTimeoutTicks / 5)) };
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
    // A broker key only: Kafka has no topic-level producer.id.expiration.ms.
    producerIdExpirationMs: config.get('producer.id.expiration.ms'),
  };
}

/** What a full (or failing) disk refuses: writing, syncing, creating files and directories. */
const STORAGE_WRITES: readonly FsOperation[] = ['write', 'datasync', 'mkdir', 'rename', 'syncDirectory'];

export async function startBroker(options: StartBrokerOptions = {}): Promise<Broker> {
  const config = options.config ?? buildBrokerConfig({ overrides: new Map(Object.entries(options.overrides ?? {})) });
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const logger = (options.logger ?? createLogger({ level: config.get('log.level') })).child({ nodeId: config.nodeId });
  const nodeId = config.nodeId;
  let readiness: Readiness = { ready: false, reason: 'starting' };

  // debug.fault.injection.enable: storage goes through a switch the admin port can flip (chaos runs).
  const faultFs = options.fs === undefined && config.get('debug.fault.injection.enable') ? new FaultInjectingFs(nodeStorageFs, { recordCalls: false }) : undefined;
  if (faultFs !== undefined) logger.warn({ logDir: config.logDir, metadataLogDir: config.metadataLogDir }, 'debug.fault.injection.enable is on: POST /debug/storage-fault on the admin port makes log dir (or metadata log) writes fail');
  const logManager = await openLogManager({
    logDir: config.logDir,
    nodeId,
    clusterId: config.clusterId,
    clock,
    logger: logger.child({ component: 'storage' }),
    fs: options.fs ?? faultFs,
    verifySealedSegments: config.get('log.recovery.verify.sealed.segments'),
  });
  if (existsSync(join(config.logDir, LEGACY_METADATA_LOG))) {
    await logManager.close();
    throw new KavkaError(
      'INVALID_CONFIG',
      `${join(config.logDir, LEGACY_METADATA_LOG)} holds metadata in the single-node format of an earlier version, which this version does not read; start with an empty log.dirs (or move that directory away)`,
    );
  }
  // Wired below, once the replica manager and the lifecycle exist.
  const onLogDirOffline: { handle?: (reason: string) => void } = {};
  logManager.onOffline((reason) => {
    readiness = { ready: false, reason: `log dir ${config.logDir} is offline: ${reason}` };
    logger.error({ logDir: config.logDir, reason }, 'log dir went offline; its partitions are not served until a probe succeeds and the dir is reopened through recovery');
    onLogDirOffline.handle?.(reason);
  });

  // Where to dial each peer's controller listener: an override, else its bootstrap voter
  // address, else the endpoint it registered. This node's own address is known once bound.
  let ownControllerAddress: string | undefined;
  const voterAddresses = new Map(config.quorumVoters.map((v) => [v.nodeId, `${v.host}:${v.port}`]));
  const started: { controller?: QuorumController } = {};
  const addressOf = (id: number): string | undefined => {
    if (id === nodeId) return ownControllerAddress;
    const registered = started.controller?.image.brokers.get(id)?.endpoints.get(config.controllerListener);
    return config.peerAddressOverrides.get(id) ?? voterAddresses.get(id) ?? (registered === undefined ? undefined : `${registered.host}:${registered.port}`);
  };
  // Where to dial a broker's inter-broker listener (replication): an override, else its endpoint.
  const interBrokerListener = config.get('inter.broker.listener.name').toUpperCase();
  const brokerAddressOf = (id: number): string | undefined => {
    const registered = started.controller?.image.brokers.get(id)?.endpoints.get(interBrokerListener);
    return config.peerAddressOverrides.get(id) ?? (registered === undefined ? undefined : `${registered.host}:${registered.port}`);
  };

  const timing = raftTiming(config.get('controller.quorum.election.timeout.ms'));
  const transport = new GrpcRaftTransport({
    clusterId: config.clusterId,
    nodeId,
    peerAddresses: new Map(config.quorumVoters.filter((v) => v.nodeId !== nodeId).map((v) => [v.nodeId, addressOf(v.nodeId) ?? ''])),
    clock,
    random,
    logger: logger.child({ component: 'raft-transport' }),
  });
  let raft: RaftNode;
  /** debug.fault.injection.enable: the switch that makes the metadata log's writes fail. */
  let metadataFaults: FaultSwitchRaftStorage | undefined;
  let raftDirectoryId: string | undefined;
  try {
    const raftDirectory = join(config.metadataLogDir, RAFT_DIRECTORY);
    await mkdir(config.metadataLogDir, { recursive: true }).catch((error: unknown) => {
      throw new KavkaError('KAFKA_STORAGE_ERROR', `cannot create metadata.log.dir ${config.metadataLogDir}: ${(error as Error).message}`, { cause: error });
    });
    const levelStorage = await LevelRaftStorage.open({ directory: raftDirectory, clusterId: config.clusterId, nodeId, newDirectoryId: randomUUID });
    if (levelStorage.fresh) await formatFreshRaftStore(levelStorage, transport, config, logger);
    raftDirectoryId = levelStorage.directoryId;
    if (faultFs !== undefined) metadataFaults = new FaultSwitchRaftStorage(levelStorage, raftDirectory);
    raft = await RaftNode.open({
      directoryId: raftDirectoryId,
      nodeId,
      bootstrap: { voters: config.quorumVoters.map((v) => v.nodeId).sort((a, b) => a - b), learners: [] },
      ...timing,
      preVote: true,
      checkQuorum: true,
      storage: metadataFaults ?? levelStorage,
      transport,
      clock,
      random,
      logger,
    });
  } catch (error) {
    await transport.close();
    await logManager.close();
    throw error;
  }
  const controller = await QuorumController.start({
    nodeId,
    raft,
    defaultPartitions: config.get('num.partitions'),
    defaultReplicationFactor: config.get('default.replication.factor'),
    deleteTopicEnable: config.get('delete.topic.enable'),
    bootstrapVoters: config.quorumVoters.map((v) => v.nodeId),
    sessionTimeoutMs: config.get('broker.session.timeout.ms'),
    leadership: { shrinkIsrOnFence: true, uncleanLeaderElectionDefault: config.get('unclean.leader.election.enable') },
    autoLeaderRebalance: config.get('auto.leader.rebalance.enable'),
    leaderImbalanceCheckIntervalMs: config.get('leader.imbalance.check.interval.seconds') * 1000,
    snapshotBytes: config.get('metadata.log.max.record.bytes.between.snapshots'),
    random,
    newTopicId: options.newTopicId ?? randomUUID,
    clock,
    logger: logger.child({ component: 'controller' }),
  });
  started.controller = controller;
  transport.onProbe((from) => {
    const status = raft.status();
    return { nodeId, term: status.term, lastIndex: status.lastIndex, commit: status.committed, directoryId: raftDirectoryId ?? '', knowsNode: controller.image.brokers.has(from) };
  });
  let fatal: KavkaError | undefined;
  /** Callers of waitReady: settled once the node serves, or when the metadata log fails. */
  const readyWaiters = new Set<{ done: () => void; fail: (error: KavkaError) => void }>();
  raft.onFailure((error) => {
    fatal = error;
    readiness = { ready: false, reason: `the metadata log failed: ${error.message}` };
    logger.fatal({ err: error }, 'the metadata log failed; this node stops serving and must be restarted');
    for (const waiter of readyWaiters) waiter.fail(error);
    readyWaiters.clear();
    options.onFatal?.(error);
  });
  // Learners and voters added later are reached at the endpoint they registered.
  const knownPeerAddresses = new Map<number, string>();
  const unsubscribePeers = controller.onImage((image) => {
    for (const id of image.brokers.keys()) {
      if (id === nodeId) continue;
      const address = addressOf(id);
      if (address !== undefined && knownPeerAddresses.get(id) !== address) {
        knownPeerAddresses.set(id, address);
        transport.setPeerAddress(id, address);
      }
    }
  });

  const channel = new ControllerChannel({
    nodeId,
    controllerId: () => controller.controllerId,
    voterIds: () => config.quorumVoters.map((v) => v.nodeId),
    addressOf,
    clock,
    logger: logger.child({ component: 'controller-channel' }),
    requestTimeoutMs: 10_000,
  });
  const replicationClient = new ReplicationClient({ clusterId: config.clusterId, addressOf: brokerAddressOf });
  const replicaManager = new ReplicaManager({
    nodeId,
    logManager,
    logConfigFor: (topicConfigs) => logConfigFor(config, topicConfigs),
    minInsyncReplicasFor: (topicConfigs) => Number(topicConfigValue(config, topicConfigs, 'min.insync.replicas')),
    alterIsr: async (request) => {
      const { response } = await channel.call<{ errorCode: string; errorMessage: string; metadataOffset: string }>('AlterPartition', request);
      if (response.errorCode !== 'NONE') {
        const code = response.errorCode === 'FENCED_LEADER_EPOCH' ? 'NOT_LEADER_OR_FOLLOWER' : response.errorCode;
        throw new AlterPartitionRefused(code as 'NOT_LEADER_OR_FOLLOWER', `changing the ISR of ${request.topic}-${request.partition} failed: ${response.errorMessage}`, { retriable: true });
      }
      await controller.waitForOffset(Number(response.metadataOffset), 10_000);
      await replicaManager.applyImage(controller.image);
    },
    replication: {
      transport: (leaderId, request, signal) => replicationClient.fetch(leaderId, request, signal),
      replicaLagTimeMaxMs: config.get('replica.lag.time.max.ms'),
      fetchMaxWaitMs: config.get('replica.fetch.wait.max.ms'),
      fetchMinBytes: config.get('replica.fetch.min.bytes'),
      partitionMaxBytes: config.get('replica.fetch.max.bytes'),
      responseMaxBytes: config.get('replica.fetch.response.max.bytes'),
      fetchBackoffMs: config.get('replica.fetch.backoff.ms'),
    },
    clock,
    logger: logger.child({ component: 'replica-manager' }),
  });

  const metrics = new BrokerMetrics(
    nodeId,
    () => replicaManager,
    () => logManager,
    (p) => failuresTolerated(controller.image, p.image, p.minInsyncReplicas, controller.voters()),
  );
  const servers = new GrpcServers({ nodeId, config, controller, controllerChannel: channel, producerIds: new ProducerIdManager(nodeId, channel), metadataCaughtUp: () => lifecycle?.state.caughtUp === true, replicaManager, metrics, clock, logger: logger.child({ component: 'server' }) }, transport.serviceHandlers(), () => transport.endInbound());
  const admin = new AdminHttpServer(
    metrics.registry,
    () => readiness,
    faultFs === undefined
      ? undefined
      : (errno, store) => {
          if (store === 'log') {
            faultFs.clearFaults();
            if (errno !== null) for (const operation of STORAGE_WRITES) faultFs.failAlways(operation, errno);
          } else {
            metadataFaults?.failWrites(errno);
          }
          const dir = store === 'log' ? { logDir: config.logDir } : { metadataLogDir: config.metadataLogDir };
          logger.warn({ ...dir, errno }, errno === null ? `debug: ${store} writes succeed again` : `debug: ${store} writes now fail`);
        },
  );
  let retentionCancel: (() => void) | undefined;
  let unsubscribeImage: () => void = () => undefined;
  let lifecycle: BrokerLifecycle | undefined;
  let stopped = false;
  const updateReadiness = () => {
    if (stopped || fatal !== undefined) return;
    const state = lifecycle?.state;
    const self = controller.image.brokers.get(nodeId);
    readiness =
      logManager.state.kind !== 'online' ? { ready: false, reason: `log dir ${config.logDir} is offline` }
      : state?.registeredOffset === undefined ? { ready: false, reason: 'registering with the controller' }
      : !state.caughtUp ? { ready: false, reason: `catching up on metadata (at ${controller.metadataOffset}, registered at ${state.registeredOffset})` }
      : self === undefined || self.fenced || state.fenced || self.incarnationId !== lifecycle?.incarnationId ? { ready: false, reason: 'fenced: waiting for the controller to accept this broker' }
      : { ready: true };
    if (readiness.ready) {
      for (const waiter of readyWaiters) waiter.done();
      readyWaiters.clear();
    }
  };
  const unsubscribeReadiness = controller.onImage(updateReadiness);
  const waitReady = (timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      updateReadiness();
      if (readiness.ready) {
        resolve();
        return;
      }
      if (fatal !== undefined) {
        reject(fatal);
        return;
      }
      const cancel = clock.schedule(timeoutMs, () => {
        readyWaiters.delete(waiter);
        reject(new KavkaError('REQUEST_TIMED_OUT', `node ${nodeId} was not ready within ${timeoutMs} ms: ${readiness.ready ? 'ready' : readiness.reason}`));
      });
      const waiter = {
        done: () => {
          cancel();
          resolve();
        },
        fail: (error: KavkaError) => {
          cancel();
          reject(error);
        },
      };
      readyWaiters.add(waiter);
    });

  // ---------------------------------------------------------------- offline log dir and back
  const probeIntervalMs = config.get('log.dir.offline.probe.interval.ms');
  let probeCancel: (() => void) | undefined;
  let recovering: Promise<void> | undefined;
  const dirLogger = logger.child({ component: 'log-dir-recovery', logDir: config.logDir });
  onLogDirOffline.handle = (reason) => {
    replicaManager.suspendForOfflineLogDir(reason);
    lifecycle?.setOfflineLogDirs([config.logDir]);
    scheduleProbe();
  };
  const scheduleProbe = () => {
    if (stopped || probeCancel !== undefined) return;
    probeCancel = clock.schedule(probeIntervalMs, () => {
      probeCancel = undefined;
      recovering = tryReopenLogDir().then(
        (back) => {
          if (!back) scheduleProbe();
        },
        (error: unknown) => {
          dirLogger.error({ err: error }, 'reopening the log dir failed; it stays offline and the probe goes on');
          scheduleProbe();
        },
      );
    });
  };
  /** One probe; reopens the dir when it works and the controller has fenced this broker. Returns whether the dir is back. */
  const tryReopenLogDir = async (): Promise<boolean> => {
    if (stopped) return true;
    if (logManager.state.kind === 'online') return true;
    try {
      await logManager.probe();
    } catch (error) {
      dirLogger.warn({ err: error, probeIntervalMs }, 'log dir probe failed (no space, or the disk still fails); the dir stays offline');
      return false;
    }
    const self = controller.image.brokers.get(nodeId);
    if (self !== undefined && !self.fenced) {
      dirLogger.info('log dir probe succeeded; waiting for the controller to fence this broker before reopening');
      return false;
    }
    dirLogger.info('log dir probe succeeded: written, fsynced and deleted a probe file; reopening the dir through recovery');
    await logManager.reopen();
    if (stopped) return true;
    await replicaManager.reopenLogDir(controller.image);
    lifecycle?.setOfflineLogDirs([]);
    updateReadiness();
    dirLogger.info({ partitions: replicaManager.allPartitions().length }, 'log dir is back online; its partitions follow their leaders until they are in sync again');
    return true;
  };

  const closeAll = async (graceMs: number) => {
    stopped = true;
    probeCancel?.();
    await recovering;
    retentionCancel?.();
    unsubscribeImage();
    unsubscribeReadiness();
    unsubscribePeers();
    await servers.close(graceMs);
    await replicaManager.close();
    replicationClient.close();
    await logManager.close();
    channel.close();
    await controller.close();
    await admin.close();
  };

  try {
    const bound = await servers.listen(config.listeners);
    const endpoints = bound.map((b) => {
      const advertised = config.advertisedListeners.find((a) => a.name === b.name);
      // A listener bound to port 0 advertises the port the OS chose.
      const port = advertised === undefined || advertised.port === 0 ? b.port : advertised.port;
      const host = advertised?.host === '0.0.0.0' || advertised === undefined ? b.host : advertised.host;
      return { name: b.name, host, port };
    });
    const controllerBound = bound.find((b) => b.name === config.controllerListener);
    ownControllerAddress = controllerBound === undefined ? undefined : `${controllerBound.host === '0.0.0.0' ? '127.0.0.1' : controllerBound.host}:${controllerBound.port}`;
    const adminPort = await admin.listen(config.admin.host, config.admin.port);

    lifecycle = new BrokerLifecycle({
      nodeId,
      clusterId: config.clusterId,
      endpoints,
      rack: config.get('broker.rack').trim() === '' ? undefined : config.get('broker.rack').trim(),
      channel,
      controller,
      heartbeatIntervalMs: config.get('broker.heartbeat.interval.ms'),
      raftStore: () => ({ directoryId: raftDirectoryId, rejoining: raft.status().rejoining }),
      onFencedChange: updateReadiness,
      clock,
      logger: logger.child({ component: 'broker-lifecycle' }),
    });
    if (logManager.state.kind === 'offline') lifecycle.setOfflineLogDirs([config.logDir]);
    lifecycle.onCaughtUp(() => {
      // From here on every image is at least as new as this node's registration.
      void replicaManager.applyImage(controller.image);
      unsubscribeImage = controller.onImage((image) => void replicaManager.applyImage(image));
      updateReadiness();
    });
    lifecycle.start();

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
          await state.log.removeExpiredProducers(clock.nowMs());
          if (deleted > 0) logger.info({ topicPartition, segmentsDeleted: deleted, logStartOffset: state.log.logStartOffset.toString() }, 'retention deleted segments');
        } catch (error) {
          logger.warn({ err: error, topicPartition }, 'retention failed');
        }
      }
    };
    scheduleRetention();
    servers.setServing(true);

    // The whole quorum is this node: it serves within moments, so return only once it does.
    if (config.quorumVoters.length === 1 && config.quorumVoters[0].nodeId === nodeId) {
      await waitReady(config.get('shutdown.timeout.ms') + 20_000);
      await replicaManager.applyImage(controller.image);
    }
    const client = bound.find((b) => b.name === 'CLIENT');
    const clientAddress = `${client?.host}:${client?.port}`;
    logger.info({ listeners: bound, admin: `${config.admin.host}:${adminPort}`, logDir: config.logDir, voters: config.quorumVoters.map((v) => v.nodeId) }, 'node started');
    void waitReady(2 ** 31 - 1).then(
      () => logger.info({ controllerId: controller.controllerId, metadataOffset: controller.metadataOffset }, 'node ready'),
      () => undefined,
    );

    let stopping: Promise<void> | undefined;
    return {
      nodeId,
      config,
      listeners: bound,
      clientAddress,
      adminAddress: `${config.admin.host}:${adminPort}`,
      logManager,
      controller,
      readiness: () => readiness,
      waitReady,
      stop: () => {
        stopping ??= (async () => {
          readiness = { ready: false, reason: 'shutting down' };
          logger.info('controlled shutdown started');
          const bound = config.get('shutdown.timeout.ms');
          const started = clock.monotonicMs();
          await lifecycle?.shutdown(Math.floor(bound / 2));
          await handOffControllerLeadership(controller, Math.max(0, Math.floor(bound / 2) - (clock.monotonicMs() - started)), logger);
          await closeAll(Math.max(0, bound - (clock.monotonicMs() - started)));
          logger.info('node stopped');
        })();
        return stopping;
      },
    };
  } catch (error) {
    await lifecycle?.shutdown(0);
    await closeAll(0).catch(() => undefined);
    throw error;
  }
}

/**
 * A Raft store that was just created (an empty log.dirs, or one whose data was deleted) is
 * formatted after asking the other bootstrap voters whether this node has been part of the
 * cluster (a registered broker in their metadata). If it has, its old store's votes and log are
 * gone: the new store is formatted as rejoining and the node neither votes nor stands for
 * election until the controller re-adds it as a voter with the new directory id (raft-core.ts,
 * "Rejoining"). If no peer answers, the node assumes a brand-new cluster and says so.
 */
async function formatFreshRaftStore(storage: LevelRaftStorage, transport: GrpcRaftTransport, config: BrokerConfig, logger: Logger): Promise<void> {
  const directoryId = storage.directoryId ?? randomUUID();
  const peers = config.quorumVoters.map((v) => v.nodeId).filter((id) => id !== config.nodeId);
  if (peers.length === 0) {
    await storage.format(directoryId, false);
    return;
  }
  const deadlineMs = Math.min(5000, Math.max(500, 2 * config.get('controller.quorum.election.timeout.ms')));
  const answers = await Promise.allSettled(peers.map((id) => transport.probe(id, deadlineMs)));
  const answered = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
  const knowing = answered.filter((a) => a.knowsNode);
  if (knowing.length > 0) {
    logger.warn(
      { directoryId, knownBy: knowing.map((a) => a.nodeId), term: Math.max(...knowing.map((a) => a.term)) },
      'the Raft store was created empty but the cluster already knows this node: its data was deleted. Formatting it as rejoining: it follows the metadata log without voting until the active controller removes the old voter identity and adds it back with this directory id',
    );
    await storage.format(directoryId, true);
    return;
  }
  if (answered.length === 0) {
    logger.warn(
      { directoryId, peers, deadlineMs },
      'the Raft store was created empty and no other controller voter answered: assuming this is a brand-new cluster and voting normally. If this node was part of a running cluster and its data was deleted, stop it and start it again once the other voters are up, or it may vote twice in a term it voted in before',
    );
  } else {
    logger.info({ directoryId, answered: answered.map((a) => a.nodeId) }, 'the Raft store was created empty and no peer knows this node: formatting it as a new voter');
  }
  await storage.format(directoryId, false);
}

/** Before the active controller stops, another voter takes over, so no election timeout passes without one. */
async function handOffControllerLeadership(controller: QuorumController, timeoutMs: number, logger: Logger): Promise<void> {
  if (!controller.isActive || timeoutMs <= 0) return;
  const target = controller.image.unfencedBrokerIds().find((id) => id !== controller.controllerId && controller.isVoter(id));
  if (target === undefined) return;
  try {
    await controller.transferLeadership(target);
    logger.info({ newControllerId: target }, 'handed controller leadership to another voter');
  } catch (error) {
    logger.warn({ err: error, target }, 'could not hand off controller leadership; the others elect a new controller after the election timeout');
  }
}
