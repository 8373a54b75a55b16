// A partition's leader epoch cache on disk, `<partition dir>/leader-epoch-checkpoint`, in the
// text format of Kafka's LeaderEpochCheckpointFile:
//
//   0                        version
//   2                        number of entries
//   <epoch> <startOffset>    one line per entry, oldest first
//   ...
//
// Written atomically (temp, fdatasync, rename, directory fsync) after each change of the cache.
// The log writes it before the batch that starts a new epoch and after the bytes a truncation
// removes, so after a crash it may hold entries past the log end, never lack one below it; the
// loader drops the former (leader-epoch-recovery.ts).
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { epochEntriesProblem, type EpochEntry } from './leader-epoch-cache.js';
import { readFileIfExists, type StorageFs } from './storage-fs.js';

export const LEADER_EPOCH_CHECKPOINT_FILE = 'leader-epoch-checkpoint';
const CHECKPOINT_VERSION = '0';

export function leaderEpochCheckpointPath(directory: string): string {
  return join(directory, LEADER_EPOCH_CHECKPOINT_FILE);
}

export function formatLeaderEpochCheckpoint(entries: readonly EpochEntry[]): string {
  const lines = [CHECKPOINT_VERSION, String(entries.length), ...entries.map((entry) => `${entry.epoch} ${entry.startOffset}`)];
  return `${lines.join('\n')}\n`;
}

export async function writeLeaderEpochCheckpoint(fs: StorageFs, directory: string, entries: readonly EpochEntry[]): Promise<void> {
  await writeFileAtomic(fs, leaderEpochCheckpointPath(directory), Buffer.from(formatLeaderEpochCheckpoint(entries), 'utf8'), { syncDirectory: true });
}

export type LeaderEpochCheckpointRead =
  | { kind: 'missing' }
  | { kind: 'damaged'; reason: string }
  | { kind: 'read'; entries: EpochEntry[] };

/** Parses the checkpoint text; a damaged file is reported, not thrown (the loader rebuilds it from the log). */
export function parseLeaderEpochCheckpoint(text: string): LeaderEpochCheckpointRead {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  if (lines[0]?.trim() !== CHECKPOINT_VERSION) return { kind: 'damaged', reason: `version line is ${JSON.stringify(lines[0] ?? null)}, expected ${CHECKPOINT_VERSION}` };
  const countText = lines[1]?.trim() ?? '';
  if (!/^\d+$/.test(countText) || Number(countText) !== lines.length - 2) {
    return { kind: 'damaged', reason: `entry count ${JSON.stringify(lines[1] ?? null)} does not match the ${lines.length - 2} entry lines` };
  }
  const entries: EpochEntry[] = [];
  for (const line of lines.slice(2)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 2 || !/^\d{1,10}$/.test(fields[0]) || !/^\d{1,19}$/.test(fields[1])) return { kind: 'damaged', reason: `bad entry line ${JSON.stringify(line)}` };
    entries.push({ epoch: Number(fields[0]), startOffset: BigInt(fields[1]) });
  }
  const problem = epochEntriesProblem(entries);
  if (problem !== undefined) return { kind: 'damaged', reason: problem };
  return { kind: 'read', entries };
}

export async function readLeaderEpochCheckpoint(fs: StorageFs, directory: string): Promise<LeaderEpochCheckpointRead> {
  const bytes = await readFileIfExists(fs, leaderEpochCheckpointPath(directory));
  if (bytes === undefined) return { kind: 'missing' };
  return parseLeaderEpochCheckpoint(bytes.toString('utf8'));
}
