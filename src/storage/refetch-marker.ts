// `<partition dir>/.kavka_refetch_required`: recovery repaired this replica by truncating data that
// had been written and fsynced (a corrupt batch), so the log may lack records its leader
// acknowledged. While the marker exists the replica must not lead: it re-fetches from a leader
// and the replica manager removes the marker once the leader has taken it back into the ISR
// (which proves it caught up). Kept on disk so a restart before that keeps the rule.
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { formatProperties, parseProperties } from '../util/properties.js';
import { isNotFound, readFileIfExists, type StorageFs } from './storage-fs.js';

export const REFETCH_REQUIRED_FILE = '.kavka_refetch_required';
const MARKER_VERSION = '1';

export function refetchMarkerPath(directory: string): string {
  return join(directory, REFETCH_REQUIRED_FILE);
}

/** Records (durably) that the log was truncated to `offset` by a corruption repair. */
export async function writeRefetchMarker(fs: StorageFs, directory: string, offset: bigint): Promise<void> {
  const text = formatProperties([
    ['version', MARKER_VERSION],
    ['truncated.to.offset', offset.toString()],
  ]);
  await writeFileAtomic(fs, refetchMarkerPath(directory), text, { syncDirectory: true });
}

/**
 * The offset a repair truncated to, or undefined when there is no marker. An unreadable marker
 * still means a repair happened: it reads as offset 0 (the rule holds; only the logged offset is lost).
 */
export async function readRefetchMarker(fs: StorageFs, directory: string): Promise<bigint | undefined> {
  const bytes = await readFileIfExists(fs, refetchMarkerPath(directory));
  if (bytes === undefined) return undefined;
  const value = parseProperties(bytes.toString('utf8'))?.get('truncated.to.offset');
  return value !== undefined && /^\d+$/.test(value) ? BigInt(value) : 0n;
}

export async function removeRefetchMarker(fs: StorageFs, directory: string): Promise<void> {
  try {
    await fs.unlink(refetchMarkerPath(directory));
  } catch (error) {
    if (isNotFound(error)) return;
    throw error;
  }
  await fs.syncDirectory(directory);
}
