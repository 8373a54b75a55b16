// The storage layer's only door to the disk. Every file operation in src/storage goes through a
// StorageFs, so tests can count operations and inject the faults a real disk gives (ENOSPC, EIO)
// without mounts (DESIGN.md section 8: the short chaos profile injects ENOSPC through it).
//
// The real implementation uses callback fs on raw descriptors for the per-append calls (read,
// write, fdatasync). DESIGN.md section 9 measured fdatasync at ~0.2 ms through the sync API and
// ~0.4 ms through fs.promises; the callback API sits between them without the FileHandle
// machinery, and unlike the sync API it does not stall the event loop while the disk works, so
// producers keep arriving and group commit has something to coalesce. Directory operations are
// rare and use fs.promises.
import * as nodeFs from 'node:fs';

/**
 * read: existing file, read only. readWrite: existing file. createNew: a new file (fails with
 * EEXIST if present). truncate: create or empty (temp files of atomic writes).
 */
export type OpenMode = 'read' | 'readWrite' | 'createNew' | 'truncate';

export interface FileStat {
  size: number;
  isDirectory: boolean;
  mtimeMs: number;
}

/**
 * An open file. Positional I/O only (pread/pwrite): callers track their own positions, so a read
 * and a write, or a write and an fdatasync, may overlap.
 */
export interface StorageFile {
  readonly path: string;
  /** Reads up to `length` bytes at `position`; fewer only at the end of the file. */
  read(buffer: Buffer, bufferOffset: number, length: number, position: number): Promise<number>;
  /** Writes all of `data` at `position` (short writes are continued, never silently dropped). */
  write(data: Buffer, position: number): Promise<void>;
  /** fdatasync: the file's data (and the size needed to read it) reaches stable storage. */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface StorageFs {
  open(path: string, mode: OpenMode): Promise<StorageFile>;
  /** The whole file; rejects with ENOENT when it is missing. */
  readFile(path: string): Promise<Buffer>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  /** Creates the directory and its parents; succeeds if it exists. */
  mkdir(path: string): Promise<void>;
  /** Removes a directory and everything in it; succeeds if it is missing. */
  removeDirectory(path: string): Promise<void>;
  /** undefined when nothing is at `path`. */
  stat(path: string): Promise<FileStat | undefined>;
  /** fsync of a directory, so created, renamed and removed names survive a crash. */
  syncDirectory(path: string): Promise<void>;
}

const OPEN_FLAGS: Record<OpenMode, string> = { read: 'r', readWrite: 'r+', createNew: 'wx+', truncate: 'w' };

export function errorCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

export function isNotFound(error: unknown): boolean {
  return errorCodeOf(error) === 'ENOENT';
}

/** Reads up to `length` bytes at `position` into a new buffer; shorter only at the end of the file. */
export async function readAt(file: StorageFile, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buffer, filled, length - filled, position + filled);
    if (n === 0) break;
    filled += n;
  }
  return filled === length ? buffer : buffer.subarray(0, filled);
}

/** The file, or undefined when it is missing. */
export async function readFileIfExists(fs: StorageFs, path: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

class NodeStorageFile implements StorageFile {
  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  read(buffer: Buffer, bufferOffset: number, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      nodeFs.read(this.fd, buffer, bufferOffset, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead)));
    });
  }

  async write(data: Buffer, position: number): Promise<void> {
    let written = 0;
    while (written < data.length) {
      const n = await this.writeOnce(data, written, position + written);
      if (n <= 0) throw Object.assign(new Error(`write to ${this.path} made no progress`), { code: 'EIO' });
      written += n;
    }
  }

  private writeOnce(data: Buffer, offset: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      nodeFs.write(this.fd, data, offset, data.length - offset, position, (error, bytesWritten) => (error ? reject(error) : resolve(bytesWritten)));
    });
  }

  datasync(): Promise<void> {
    return new Promise((resolve, reject) => nodeFs.fdatasync(this.fd, (error) => (error ? reject(error) : resolve())));
  }

  truncate(length: number): Promise<void> {
    return new Promise((resolve, reject) => nodeFs.ftruncate(this.fd, length, (error) => (error ? reject(error) : resolve())));
  }

  size(): Promise<number> {
    return new Promise((resolve, reject) => nodeFs.fstat(this.fd, (error, stats) => (error ? reject(error) : resolve(stats.size))));
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => nodeFs.close(this.fd, (error) => (error ? reject(error) : resolve())));
  }
}

class NodeStorageFs implements StorageFs {
  open(path: string, mode: OpenMode): Promise<StorageFile> {
    return new Promise((resolve, reject) => {
      nodeFs.open(path, OPEN_FLAGS[mode], 0o644, (error, fd) => (error ? reject(error) : resolve(new NodeStorageFile(path, fd))));
    });
  }

  readFile(path: string): Promise<Buffer> {
    return nodeFs.promises.readFile(path);
  }

  rename(from: string, to: string): Promise<void> {
    return nodeFs.promises.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return nodeFs.promises.unlink(path);
  }

  readdir(path: string): Promise<string[]> {
    return nodeFs.promises.readdir(path);
  }

  async mkdir(path: string): Promise<void> {
    await nodeFs.promises.mkdir(path, { recursive: true });
  }

  removeDirectory(path: string): Promise<void> {
    return nodeFs.promises.rm(path, { recursive: true, force: true });
  }

  async stat(path: string): Promise<FileStat | undefined> {
    try {
      const stats = await nodeFs.promises.stat(path);
      return { size: stats.size, isDirectory: stats.isDirectory(), mtimeMs: stats.mtimeMs };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async syncDirectory(path: string): Promise<void> {
    const handle = await nodeFs.promises.open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

/** The real file system. Stateless, so one instance serves every log dir. */
export const nodeStorageFs: StorageFs = new NodeStorageFs();
