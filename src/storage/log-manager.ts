// Owns one log dir (Kafka's LogManager for a single log.dirs entry): meta.properties, the
// partition directories in it, opening (with recovery) and deleting partition logs, and the dir's
// online/offline state shared by its logs.
//
// Called by the broker (open, close, probe, reopen) and the replica manager (createLog, deleteLog,
// getLog), from many concurrent tasks: createLog for one partition is deduplicated while its open
// is in flight; deleteLog waits for an open in flight before deleting.
//
// Offline and back (DESIGN.md section 2): an I/O error or a corrupt batch takes the dir offline
// (LogDirHealth). The broker then probes the dir (probe: write, fsync and delete a small file) and,
// once that works, calls reopen: every log is closed without a sync, meta.properties checked and
// the partition directories listed again, and a fresh health starts online. The replica manager
// then opens each partition again through createLog, i.e. through the same recovery as at
// start-up (no clean-shutdown marker was written, so each open recovers as after a crash), and
// fsyncs what recovery kept before counting it durable. Nothing that failed is ever retried.
//
// Each partition directory records the id of the topic it belongs to (partition.metadata,
// partition-metadata.ts), so a directory left by a deleted topic is never served as the data of a
// new topic with the same name.
import { join } from 'node:path';
import { AssertionError, assert } from '../util/assert.js';
import type { Clock } from '../util/clock.js';
import { KavkaError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import {
  topicPartitionName,
  type LogConfig,
  type LogDirFailureCause,
  type LogDirState,
  type LogManager,
  type LogManagerOptions,
  type PartitionLog,
  type SealedSegmentVerification,
  type TopicPartition,
} from './api.js';
import { LogDirHealth } from './log-dir-health.js';
import { ensureMetaProperties, META_PROPERTIES_FILE } from './meta-properties.js';
import { assertTopicId, readPartitionMetadata, writePartitionMetadata } from './partition-metadata.js';
import { openPartitionLog } from './open-partition-log.js';
import type { FilePartitionLog } from './partition-log.js';
import { checkTopicPartition, DELETED_DIRECTORY_SUFFIX, parsePartitionDirectoryName } from './partition-directory.js';
import { nodeStorageFs, type StorageFs } from './storage-fs.js';
import { TEMP_SUFFIX } from './atomic-file.js';

/**
 * Creates the log dir if needed, checks or writes meta.properties, removes directories left by
 * an interrupted deleteLog, and lists the partition directories. Opens no partition.
 */
export async function openLogManager(options: LogManagerOptions): Promise<LogManager> {
  const fs = options.fs ?? nodeStorageFs;
  const logger = options.logger.child({ logDir: options.logDir });
  const partitions = await scanLogDir(fs, options, logger);
  logger.info({ partitionDirectories: partitions.size }, 'log dir opened');
  return new FileLogManager(options.logDir, fs, options.clock, logger, partitions, options.verifySealedSegments ?? 'unclean');
}

/** The file a probe of an offline dir writes, fsyncs and deletes. */
export const PROBE_FILE = '.kavka_probe';

/**
 * What openLogManager and reopen do before any partition opens: create the dir if needed, check
 * meta.properties, remove leftovers of interrupted deletions and writes, list the partition
 * directories.
 */
async function scanLogDir(fs: StorageFs, options: LogManagerOptions, logger: Logger, reopening = false): Promise<Map<string, TopicPartition>> {
  await fs.mkdir(options.logDir);
  const names = await fs.readdir(options.logDir);
  const partitions = new Map<string, TopicPartition>();
  for (const name of names) {
    const tp = parsePartitionDirectoryName(name);
    if (tp !== undefined && (await fs.stat(join(options.logDir, name)))?.isDirectory === true) partitions.set(name, tp);
  }
  // Ownership first: nothing in a dir that belongs to another node or cluster is touched. (A
  // reopen checks only that the file is still there: it was checked at start-up.)
  if (reopening) {
    if ((await fs.stat(join(options.logDir, META_PROPERTIES_FILE))) === undefined) {
      throw new KavkaError('KAFKA_STORAGE_ERROR', `${join(options.logDir, META_PROPERTIES_FILE)} is gone; the log dir stays offline until the node restarts`);
    }
  } else {
    await ensureMetaProperties(fs, options.logDir, { clusterId: options.clusterId, nodeId: options.nodeId }, partitions.size > 0);
  }
  for (const name of names) {
    const path = join(options.logDir, name);
    if (name.endsWith(DELETED_DIRECTORY_SUFFIX)) {
      logger.info({ directory: name }, 'removing a partition directory whose deletion was interrupted');
      await fs.removeDirectory(path);
    } else if (name.endsWith(TEMP_SUFFIX) || name === PROBE_FILE) {
      await fs.unlink(path);
    }
  }
  await fs.syncDirectory(options.logDir);
  return partitions;
}

/** An open log and the topic id its directory belongs to. */
interface OpenLog {
  log: FilePartitionLog;
  topicId: string;
}

/** An open in flight, deduplicated by partition name. */
interface OpeningLog {
  promise: Promise<FilePartitionLog>;
  topicId: string;
}

class FileLogManager implements LogManager {
  /** Replaced by reopen: the logs of one online period share one. */
  private health: LogDirHealth;
  private readonly open = new Map<string, OpenLog>();
  private readonly opening = new Map<string, OpeningLog>();
  private readonly offlineListeners = new Set<(reason: string) => void>();
  private closed = false;
  private reopening = false;
  /** Makes `-delete` directory names unique within this process's lifetime. */
  private deletions = 0;
  private failureCount = 0;
  private repairCount = 0;
  /**
   * Partitions to open for the first time since a reopen, by name: their open fsyncs what
   * recovery kept (a failed fsync may have left written pages the disk never got), and CRC-checks
   * their sealed segments whatever the policy when the dir went offline for corruption.
   */
  private readonly reopened = new Map<string, { cause: LogDirFailureCause }>();

  constructor(
    readonly logDir: string,
    private readonly fs: StorageFs,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** Partition directories by name, open or not. */
    private partitions: Map<string, TopicPartition>,
    private readonly verifySealedSegments: SealedSegmentVerification,
  ) {
    this.health = this.newHealth();
  }

  private newHealth(): LogDirHealth {
    const health = new LogDirHealth(this.logDir, this.clock, this.logger);
    health.onOffline((reason) => {
      this.failureCount += 1;
      for (const listener of [...this.offlineListeners]) {
        try {
          listener(reason);
        } catch (error) {
          this.logger.error({ err: error }, 'an offline listener threw');
        }
      }
    });
    return health;
  }

  get failures(): number {
    return this.failureCount;
  }

  get corruptionRepairs(): number {
    return this.repairCount;
  }

  /**
   * See LogManager.probe: `<logDir>/.kavka_probe` written, fdatasynced and deleted, and the dir
   * fsynced, through the same fs as the logs. Rejects with the I/O error; changes no state.
   */
  async probe(): Promise<void> {
    this.checkOpen();
    const path = join(this.logDir, PROBE_FILE);
    const file = await this.fs.open(path, 'truncate');
    try {
      await file.write(Buffer.from(`probe ${this.clock.nowMs()}\n`), 0);
      await file.datasync();
    } finally {
      await file.close().catch(() => undefined);
    }
    await this.fs.unlink(path);
    await this.fs.syncDirectory(this.logDir);
  }

  /** See LogManager.reopen. */
  async reopen(): Promise<void> {
    this.checkOpen();
    const state = this.health.state;
    assert(state.kind === 'offline', `reopen of ${this.logDir} while it is online`);
    assert(!this.reopening, `a reopen of ${this.logDir} is already running`);
    this.reopening = true;
    try {
      await Promise.allSettled([...this.opening.values()].map((entry) => entry.promise));
      const logs = [...this.open.values()].map((entry) => entry.log);
      // The dir is offline, so close() syncs nothing and writes no marker: each open recovers.
      await Promise.allSettled(logs.map((log) => log.close()));
      this.open.clear();
      this.logger.info({ logs: logs.length, cause: state.cause }, 'reopening the log dir: every log closed without a sync');
      this.partitions = await scanLogDir(this.fs, { logDir: this.logDir, nodeId: 0, clusterId: '', clock: this.clock, logger: this.logger }, this.logger, true);
      this.reopened.clear();
      for (const name of this.partitions.keys()) this.reopened.set(name, { cause: state.cause });
      this.health = this.newHealth();
      this.logger.info({ partitionDirectories: this.partitions.size, offlineSinceMs: state.sinceMs }, 'log dir is online again; partitions reopen through recovery');
    } catch (error) {
      if (error instanceof KavkaError || error instanceof AssertionError) throw error;
      throw new KavkaError('KAFKA_STORAGE_ERROR', `reopening log dir ${this.logDir} failed; it stays offline`, { cause: error });
    } finally {
      this.reopening = false;
    }
  }

  get state(): LogDirState {
    return this.health.state;
  }

  getLog(tp: TopicPartition): PartitionLog | undefined {
    return this.open.get(topicPartitionName(tp))?.log;
  }

  logs(): PartitionLog[] {
    return [...this.open.values()].map((entry) => entry.log);
  }

  partitionDirectories(): TopicPartition[] {
    return [...this.partitions.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }

  onOffline(listener: (reason: string) => void): () => void {
    this.offlineListeners.add(listener);
    return () => {
      this.offlineListeners.delete(listener);
    };
  }

  /**
   * See LogManager.createLog. Asking for a partition that is open (or opening) under another
   * topic id is a caller bug: a re-created topic's old log is deleted first.
   */
  async createLog(tp: TopicPartition, config: LogConfig, topicId: string): Promise<PartitionLog> {
    this.checkOpen();
    checkTopicPartition(tp);
    assertTopicId(topicId);
    this.health.checkOnline(`cannot create ${topicPartitionName(tp)}`);
    const name = topicPartitionName(tp);
    const existing = this.open.get(name) ?? this.opening.get(name);
    if (existing !== undefined) {
      assert(existing.topicId === topicId, `${name} is open for topic id ${existing.topicId}; createLog asked for ${topicId} without deleting it first`);
      return 'log' in existing ? existing.log : existing.promise;
    }
    let log: FilePartitionLog | undefined;
    const reopened = this.reopened.get(name);
    this.reopened.delete(name);
    const promise = this.prepareDirectory(name, topicId).then(async () => {
      const opened = await openPartitionLog({
        directory: join(this.logDir, name),
        topicPartition: { topic: tp.topic, partition: tp.partition },
        config,
        clock: this.clock,
        logger: this.logger,
        fs: this.fs,
        health: this.health,
        verifySealedSegments: this.verifySealedSegments,
        forceVerification: reopened?.cause === 'corruption',
        onClosed: () => {
          if (this.open.get(name)?.log === log) this.open.delete(name);
        },
      });
      if (opened.recovery.corruptionRepaired !== undefined) this.repairCount += 1;
      // What recovery read back may sit only in the page cache after a failed fsync: sync it now (a new sync, not a retry).
      if (reopened !== undefined) await opened.flush();
      return opened;
    });
    this.opening.set(name, { promise, topicId });
    this.partitions.set(name, { topic: tp.topic, partition: tp.partition });
    return promise.then(
      (opened) => {
        log = opened;
        this.opening.delete(name);
        this.open.set(name, { log: opened, topicId });
        return opened;
      },
      (error: unknown) => {
        this.opening.delete(name);
        throw error;
      },
    );
  }

  /**
   * Makes `<logDir>/<name>` a directory of topic `topicId` with its partition.metadata written,
   * before the log opens: creates it; writes the file into a directory that lacks it; replaces a
   * stray directory of an earlier topic of the same name (deleted, but the node went down before
   * the directory was removed) by an empty one. The stray is not opened, so it may be corrupt.
   */
  private async prepareDirectory(name: string, topicId: string): Promise<void> {
    const directory = join(this.logDir, name);
    try {
      if ((await this.fs.stat(directory)) !== undefined) {
        const recorded = await readPartitionMetadata(this.fs, directory);
        if (recorded === topicId) return;
        if (recorded === undefined) {
          this.logger.info({ topicPartition: name, topicId }, 'writing partition.metadata into a partition directory that has none');
          await writePartitionMetadata(this.fs, directory, topicId);
          return;
        }
        this.logger.warn(
          { topicPartition: name, directory, topicId, strayTopicId: recorded },
          `the directory ${directory} belongs to topic id ${recorded}, an earlier topic of the same name, not to ${topicId}: removing it and creating an empty log`,
        );
        await this.removePartitionDirectory(name, directory);
      }
      await this.fs.mkdir(directory);
      await writePartitionMetadata(this.fs, directory, topicId);
      await this.fs.syncDirectory(this.logDir);
    } catch (error) {
      if (error instanceof KavkaError || error instanceof AssertionError) throw error;
      throw this.health.fail('create', directory, error);
    }
  }

  /**
   * Closes the log if it is open and removes its directory (see removePartitionDirectory). Works
   * on a directory that is not open and never opens it, so a stray or corrupt directory can be
   * deleted without recovering it.
   */
  async deleteLog(tp: TopicPartition): Promise<void> {
    this.checkOpen();
    const name = topicPartitionName(tp);
    const inFlight = this.opening.get(name);
    if (inFlight !== undefined) await inFlight.promise.catch(() => undefined);
    const entry = this.open.get(name);
    this.open.delete(name);
    if (entry !== undefined) await entry.log.close();
    this.health.checkOnline(`cannot delete ${name}`);
    const directory = join(this.logDir, name);
    try {
      if ((await this.fs.stat(directory)) !== undefined) await this.removePartitionDirectory(name, directory);
    } catch (error) {
      throw this.health.fail('delete', directory, error);
    }
    this.partitions.delete(name);
    this.logger.info({ topicPartition: name, wasOpen: entry !== undefined }, 'partition log deleted');
  }

  /**
   * Renames the directory to `<name>.<ms>-<n>-delete` (durably) and then removes it, so a crash
   * mid-removal leaves a name the next start recognises and removes, never a half-deleted
   * partition. I/O errors pass through to the caller.
   */
  private async removePartitionDirectory(name: string, directory: string): Promise<void> {
    this.deletions += 1;
    const doomed = join(this.logDir, `${name}.${this.clock.nowMs()}-${this.deletions}${DELETED_DIRECTORY_SUFFIX}`);
    await this.fs.rename(directory, doomed);
    await this.fs.syncDirectory(this.logDir);
    await this.fs.removeDirectory(doomed);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.opening.values()].map((entry) => entry.promise));
    const logs = [...this.open.values()].map((entry) => entry.log);
    const results = await Promise.allSettled(logs.map((log) => log.close()));
    this.open.clear();
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    this.logger.info({ logs: logs.length, state: this.health.state.kind }, 'log dir closed');
    if (failure !== undefined) throw failure.reason;
  }

  private checkOpen(): void {
    if (this.closed) throw new KavkaError('KAFKA_STORAGE_ERROR', `log dir ${this.logDir} is closed`);
  }
}
