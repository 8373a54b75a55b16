// Small files replaced as a whole (indexes of sealed segments, checkpoints, markers,
// meta.properties): write `<name>.tmp`, fdatasync it, rename over `<name>`, and fsync the
// directory when the new name must survive a crash. A crash leaves either the old file or the
// new one, plus perhaps a stray `.tmp` that the loader deletes.
import { dirname } from 'node:path';
import type { StorageFs } from './storage-fs.js';

export const TEMP_SUFFIX = '.tmp';

export interface AtomicWriteOptions {
  /** fsync the directory after the rename; skip it when the caller syncs the directory once for several files. */
  syncDirectory: boolean;
}

export async function writeFileAtomic(fs: StorageFs, path: string, data: Buffer, options: AtomicWriteOptions): Promise<void> {
  const tempPath = path + TEMP_SUFFIX;
  const file = await fs.open(tempPath, 'truncate');
  let failed = true;
  try {
    if (data.length > 0) await file.write(data, 0);
    await file.datasync();
    failed = false;
  } finally {
    if (failed) {
      // Keep the first error; the close is only to release the descriptor.
      await file.close().catch(() => undefined);
    } else {
      await file.close();
    }
  }
  await fs.rename(tempPath, path);
  if (options.syncDirectory) await fs.syncDirectory(dirname(path));
}
