// Opening a partition log: its directory is created when missing, the log loader recovers its
// segments, indexes, log start offset and leader epochs (log-loader.ts), the producer state is
// rebuilt from the newest snapshot and the batches after it (producer-state-loader.ts), and the
// refetch marker a corruption repair left is read. One log line says what was found and done.
//
// Called by the LogManager for each partition of its log dir, and by tests and tools for a log
// opened alone (which gets a LogDirHealth of its own).
import { dirname } from 'node:path';
import { topicPartitionName } from './api.js';
import { validateLogConfig } from './log-config.js';
import { asStorageError, LogDirHealth } from './log-dir-health.js';
import { loadLog, type LogRecoveryReport } from './log-loader.js';
import { FilePartitionLog, type PartitionLogOptions } from './partition-log.js';
import { loadProducers, type LoadedProducers } from './producer-state-loader.js';
import { readRefetchMarker } from './refetch-marker.js';
import { nodeStorageFs } from './storage-fs.js';

/** Opens (recovering) or creates a partition log. Rejects with KAFKA_STORAGE_ERROR on corruption or I/O errors. */
export async function openPartitionLog(options: PartitionLogOptions): Promise<FilePartitionLog> {
  validateLogConfig(options.config);
  const fs = options.fs ?? nodeStorageFs;
  const name = topicPartitionName(options.topicPartition);
  const logger = options.logger.child({ topicPartition: name });
  const health = options.health ?? new LogDirHealth(dirname(options.directory), options.clock, options.logger);
  health.checkOnline(`opening ${name}`);
  try {
    if ((await fs.stat(options.directory)) === undefined) {
      await fs.mkdir(options.directory);
      await fs.syncDirectory(dirname(options.directory));
    }
    const loaded = await loadLog({
      fs,
      directory: options.directory,
      topicPartition: options.topicPartition,
      config: options.config,
      clock: options.clock,
      logger,
      verifySealedSegments: options.verifySealedSegments ?? 'unclean',
      forceVerification: options.forceVerification,
    });
    let refetchRequired: bigint | undefined;
    let producers: LoadedProducers;
    try {
      producers = await loadProducers({
        fs,
        directory: options.directory,
        segments: loaded.segments,
        logStartOffset: loaded.logStartOffset,
        logEndOffset: loaded.logEndOffset,
        nowMs: options.clock.nowMs(),
        expirationMs: options.config.producerIdExpirationMs,
        options: { unknownProducerPolicy: 'reject', partitionName: name },
        logger,
      });
      refetchRequired = await readRefetchMarker(fs, options.directory);
    } catch (error) {
      for (const segment of loaded.segments) await segment.close().catch(() => undefined);
      throw error;
    }
    const { corruptionRepaired, ...report } = loaded.report;
    logger.info(
      {
        ...report,
        ...producers.report,
        corruptionRepairedAt: corruptionRepaired?.truncatedToOffset.toString() ?? null,
        refetchRequiredFrom: refetchRequired?.toString() ?? null,
        logStartOffset: loaded.logStartOffset.toString(),
        logEndOffset: loaded.logEndOffset.toString(),
      },
      openedLogMessage(loaded.report),
    );
    return new FilePartitionLog(options, fs, logger, health, loaded, producers.manager, refetchRequired);
  } catch (error) {
    throw asStorageError(health, 'open', options.directory, error);
  }
}

function openedLogMessage(report: LogRecoveryReport): string {
  if (report.created) return 'log created (new and empty)';
  if (report.corruptionRepaired !== undefined) return 'log recovered after repairing a corrupt batch; it must re-fetch from its leader before it may lead';
  return report.cleanShutdown ? 'log loaded after a clean shutdown' : 'log recovered';
}
