// `<partition dir>/.kavka_cleanshutdown`, Kafka's `.kafka_cleanshutdown` kept per partition
// (Kavka closes and deletes partitions one by one). Written last when a log closes cleanly, after
// the .log is fsynced and every index written; removed (and the removal fsynced) when the log
// opens, before any append. Present at open means the indexes on disk match the .log files.
//
// It records the active segment's size and the log end offset: if the active .log no longer has
// that size (a cut file, a copy gone wrong), the loader recovers the segment as after a crash.
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { formatProperties, parseProperties } from '../util/properties.js';
import { readFileIfExists, type StorageFs } from './storage-fs.js';

export const CLEAN_SHUTDOWN_FILE = '.kavka_cleanshutdown';
const MARKER_VERSION = '1';

export interface CleanShutdownState {
  logEndOffset: bigint;
  activeSegmentBaseOffset: bigint;
  activeSegmentBytes: number;
}

export function cleanShutdownPath(directory: string): string {
  return join(directory, CLEAN_SHUTDOWN_FILE);
}

export async function writeCleanShutdown(fs: StorageFs, directory: string, state: CleanShutdownState): Promise<void> {
  const text = formatProperties([
    ['version', MARKER_VERSION],
    ['log.end.offset', state.logEndOffset.toString()],
    ['active.segment.base.offset', state.activeSegmentBaseOffset.toString()],
    ['active.segment.bytes', String(state.activeSegmentBytes)],
  ]);
  await writeFileAtomic(fs, cleanShutdownPath(directory), text, { syncDirectory: true });
}

/** The recorded state, or undefined when the marker is missing or unreadable (both mean: recover as after a crash). */
export async function readCleanShutdown(fs: StorageFs, directory: string): Promise<CleanShutdownState | undefined> {
  const bytes = await readFileIfExists(fs, cleanShutdownPath(directory));
  if (bytes === undefined) return undefined;
  const properties = parseProperties(bytes.toString('utf8'));
  const logEnd = properties?.get('log.end.offset');
  const base = properties?.get('active.segment.base.offset');
  const size = properties?.get('active.segment.bytes');
  if (properties?.get('version') !== MARKER_VERSION || logEnd === undefined || base === undefined || size === undefined) return undefined;
  if (!/^\d+$/.test(logEnd) || !/^\d+$/.test(base) || !/^\d+$/.test(size)) return undefined;
  return { logEndOffset: BigInt(logEnd), activeSegmentBaseOffset: BigInt(base), activeSegmentBytes: Number(size) };
}
