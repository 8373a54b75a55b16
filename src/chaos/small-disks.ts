// Small real file systems for the disk-full scenario's long profile: each node's log dir is a
// tmpfs of its own, which a ballast file fills until writes fail with ENOSPC, and deleting the
// ballast gives the space back. Mounting needs root (CAP_SYS_ADMIN); without it the caller
// falls back to ENOSPC injected through the storage interface.
import { execFile } from 'node:child_process';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The ballast's name in the log dir (not a topic-partition name, so the broker ignores it). */
export const BALLAST_FILE = 'chaos-ballast.bin';

/** Mounts a tmpfs of `sizeMiB` at each of `dirs`; unmounts any it mounted if one fails. Throws with the reason. */
export async function mountSmallDisks(dirs: readonly string[], sizeMiB: number): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('mounting a tmpfs needs root');
  const mounted: string[] = [];
  try {
    for (const dir of dirs) {
      await mkdir(dir, { recursive: true });
      await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0755`, 'kavka-chaos', dir]);
      mounted.push(dir);
    }
  } catch (error) {
    await unmountSmallDisks(mounted);
    throw new Error(`mount -t tmpfs failed: ${((error as { stderr?: string }).stderr ?? (error as Error).message).trim()}`);
  }
}

/** Unmounts (lazily, so a file still open cannot block it); best effort. */
export async function unmountSmallDisks(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) await run('umount', ['-l', dir]).catch(() => undefined);
}

/**
 * Writes a ballast file in `dir` until the file system refuses with ENOSPC: 1 MiB writes, then
 * 4 KiB ones for the last pages. Returns its size. Any other error is thrown.
 */
export async function fillDisk(dir: string): Promise<number> {
  const file = await open(join(dir, BALLAST_FILE), 'w');
  let bytes = 0;
  try {
    for (const size of [1 << 20, 4096]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          const { bytesWritten } = await file.write(chunk, 0, size);
          bytes += bytesWritten;
          if (bytesWritten < size) break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    await file.close().catch(() => undefined);
  }
  return bytes;
}

/** Deletes the ballast. */
export async function freeDisk(dir: string): Promise<void> {
  await rm(join(dir, BALLAST_FILE), { force: true });
}
