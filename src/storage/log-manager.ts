// Owns one log dir (Kafka's LogManager for a single log.dirs entry): meta.properties, the
// partition directories in it, opening (with recovery) and deleting partition logs, and the dir's
// online/offline state shared by its logs.
//
// Called by the broker (open, close) and the replica manager (createLog, deleteLog, getLog), from
// many concurrent tasks: createLog for one partition is deduplicated while its open is in flight;
// deleteLog waits for an open in flight before deleting.
import { join } from 'node:path';
import type { Clock } from '../util/clock.js';
import { KavkaError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import {
  topicPartitionName,
  type LogConfig,
  type LogDirState,
  type LogManager,
  type LogManagerOptions,
  type PartitionLog,
  type TopicPartition,
} from './api.js';
import { LogDirHealth } from './log-dir-health.js';
import { ensureMetaProperties } from './meta-properties.js';
import { openPartitionLog, type FilePartitionLog } from './partition-log.js';
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
  await fs.mkdir(options.logDir);
  const names = await fs.readdir(options.logDir);
  const partitions = new Map<string, TopicPartition>();
  for (const name of names) {
    const tp = parsePartitionDirectoryName(name);
    if (tp !== undefined && (await fs.stat(join(options.logDir, name)))?.isDirectory === true) partitions.set(name, tp);
  }
  // Ownership first: nothing in a dir that belongs to another node or cluster is touched.
  await ensureMetaProperties(fs, options.logDir, { clusterId: options.clusterId, nodeId: options.nodeId }, partitions.size > 0);
  for (const name of names) {
    const path = join(options.logDir, name);
    if (name.endsWith(DELETED_DIRECTORY_SUFFIX)) {
      logger.info({ directory: name }, 'removing a partition directory whose deletion was interrupted');
      await fs.removeDirectory(path);
    } else if (name.endsWith(TEMP_SUFFIX)) {
      await fs.unlink(path);
    }
  }
  await fs.syncDirectory(options.logDir);
  logger.info({ partitionDirectories: partitions.size }, 'log dir opened');
  return new FileLogManager(options.logDir, fs, options.clock, logger, partitions);
}

class FileLogManager implements LogManager {
  private readonly health: LogDirHealth;
  private readonly open = new Map<string, FilePartitionLog>();
  private readonly opening = new Map<string, Promise<FilePartitionLog>>();
  private readonly offlineListeners = new Set<(reason: string) => void>();
  private closed = false;
  /** Makes `-delete` directory names unique within this process's lifetime. */
  private deletions = 0;

  constructor(
    readonly logDir: string,
    private readonly fs: StorageFs,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** Partition directories by name, open or not. */
    private readonly partitions: Map<string, TopicPartition>,
  ) {
    this.health = new LogDirHealth(logDir, clock, logger);
    this.health.onOffline((reason) => {
      for (const listener of [...this.offlineListeners]) {
        try {
          listener(reason);
        } catch (error) {
          this.logger.error({ err: error }, 'an offline listener threw');
        }
      }
    });
  }

  get state(): LogDirState {
    return this.health.state;
  }

  getLog(tp: TopicPartition): PartitionLog | undefined {
    return this.open.get(topicPartitionName(tp));
  }

  logs(): PartitionLog[] {
    return [...this.open.values()];
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

  async createLog(tp: TopicPartition, config: LogConfig): Promise<PartitionLog> {
    this.checkOpen();
    checkTopicPartition(tp);
    this.health.checkOnline(`cannot create ${topicPartitionName(tp)}`);
    const name = topicPartitionName(tp);
    const existing = this.open.get(name);
    if (existing !== undefined) return existing;
    const inFlight = this.opening.get(name);
    if (inFlight !== undefined) return inFlight;
    let log: FilePartitionLog | undefined;
    const opening = openPartitionLog({
      directory: join(this.logDir, name),
      topicPartition: { topic: tp.topic, partition: tp.partition },
      config,
      clock: this.clock,
      logger: this.logger,
      fs: this.fs,
      health: this.health,
      onClosed: () => {
        if (this.open.get(name) === log) this.open.delete(name);
      },
    });
    this.opening.set(name, opening);
    this.partitions.set(name, { topic: tp.topic, partition: tp.partition });
    return opening.then(
      (opened) => {
        log = opened;
        this.opening.delete(name);
        this.open.set(name, opened);
        return opened;
      },
      (error: unknown) => {
        this.opening.delete(name);
        throw error;
      },
    );
  }

  /**
   * Closes the log and removes its directory: renamed to `<name>.<n>-delete` first (durably), so
   * a crash mid-removal leaves a name the next start recognises and removes, never a half-deleted
   * partition.
   */
  async deleteLog(tp: TopicPartition): Promise<void> {
    this.checkOpen();
    const name = topicPartitionName(tp);
    const inFlight = this.opening.get(name);
    if (inFlight !== undefined) await inFlight.catch(() => undefined);
    const log = this.open.get(name);
    this.open.delete(name);
    if (log !== undefined) await log.close();
    this.health.checkOnline(`cannot delete ${name}`);
    const directory = join(this.logDir, name);
    if ((await this.fs.stat(directory)) === undefined) {
      this.partitions.delete(name);
      return;
    }
    this.deletions += 1;
    const doomed = join(this.logDir, `${name}.${this.clock.nowMs()}-${this.deletions}${DELETED_DIRECTORY_SUFFIX}`);
    try {
      await this.fs.rename(directory, doomed);
      await this.fs.syncDirectory(this.logDir);
      this.partitions.delete(name);
      await this.fs.removeDirectory(doomed);
    } catch (error) {
      throw this.health.fail('delete', directory, error);
    }
    this.logger.info({ topicPartition: name }, 'partition log deleted');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.opening.values()]);
    const logs = [...this.open.values()];
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
