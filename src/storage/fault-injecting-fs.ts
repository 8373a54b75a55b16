// A StorageFs wrapper for tests and the short chaos profile: counts every operation, fails chosen
// operations with the errno a real disk gives (ENOSPC, EIO), and can hold an operation until the
// test releases it (to prove group commit and that reads never wait for a sync).
// An injected failure happens before the inner call, so a failed write wrote nothing and a failed
// fdatasync synced nothing; the storage layer must assume the worst either way.
import type { FileStat, OpenMode, StorageFile, StorageFs } from './storage-fs.js';
import { nodeStorageFs } from './storage-fs.js';

export type FsOperation =
  | 'open'
  | 'read'
  | 'write'
  | 'datasync'
  | 'truncate'
  | 'size'
  | 'close'
  | 'readFile'
  | 'rename'
  | 'unlink'
  | 'readdir'
  | 'mkdir'
  | 'removeDirectory'
  | 'stat'
  | 'syncDirectory';

export type PathMatcher = (path: string) => boolean;

export interface FsCall {
  operation: FsOperation;
  path: string;
}

export interface FsHold {
  /** Resolves when the first held call arrives. */
  readonly reached: Promise<void>;
  /** Calls waiting right now. */
  readonly waiting: number;
  /** Lets every held call (and later ones) proceed. */
  release(): void;
}

interface Fault {
  operation: FsOperation;
  code: string;
  matches: PathMatcher;
  remaining: number;
}

interface Hold {
  operation: FsOperation;
  matches: PathMatcher;
  released: boolean;
  waiters: (() => void)[];
  onReached: () => void;
}

export interface FaultInjectingFsOptions {
  /**
   * Makes datasync and syncDirectory succeed without touching the disk. For tests that reopen a
   * log thousands of times and do not test durability; never for anything else.
   */
  skipSync?: boolean;
  /** Keep every call in `calls` (default true). Off for a long-running broker. */
  recordCalls?: boolean;
}

const ANY_PATH: PathMatcher = () => true;

export class FaultInjectingFs implements StorageFs {
  /** Every call in order; clear with clearCalls() in long loops. */
  readonly calls: FsCall[] = [];
  private faults: Fault[] = [];
  private holds: Hold[] = [];
  private readonly skipSync: boolean;
  private readonly recordCalls: boolean;

  constructor(
    private readonly inner: StorageFs = nodeStorageFs,
    options: FaultInjectingFsOptions = {},
  ) {
    this.skipSync = options.skipSync ?? false;
    this.recordCalls = options.recordCalls ?? true;
  }

  /** The next matching call fails with `code` (an errno name such as ENOSPC or EIO). */
  failNext(operation: FsOperation, code = 'EIO', matches: PathMatcher = ANY_PATH): void {
    this.faults.push({ operation, code, matches, remaining: 1 });
  }

  /** Every matching call fails with `code` until clearFaults(). */
  failAlways(operation: FsOperation, code = 'EIO', matches: PathMatcher = ANY_PATH): void {
    this.faults.push({ operation, code, matches, remaining: Number.POSITIVE_INFINITY });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Matching calls wait until the hold is released. */
  hold(operation: FsOperation, matches: PathMatcher = ANY_PATH): FsHold {
    let onReached: () => void = () => undefined;
    const reached = new Promise<void>((resolve) => {
      onReached = resolve;
    });
    const hold: Hold = { operation, matches, released: false, waiters: [], onReached };
    this.holds.push(hold);
    return {
      reached,
      get waiting() {
        return hold.waiters.length;
      },
      release: () => {
        hold.released = true;
        this.holds = this.holds.filter((h) => h !== hold);
        for (const waiter of hold.waiters.splice(0)) waiter();
      },
    };
  }

  count(operation: FsOperation, matches: PathMatcher = ANY_PATH): number {
    let n = 0;
    for (const call of this.calls) if (call.operation === operation && matches(call.path)) n++;
    return n;
  }

  clearCalls(): void {
    this.calls.length = 0;
  }

  /** Records the call, waits on a hold, and throws an injected fault. Called before every inner call. */
  async enter(operation: FsOperation, path: string): Promise<void> {
    if (this.recordCalls) this.calls.push({ operation, path });
    const hold = this.holds.find((h) => h.operation === operation && !h.released && h.matches(path));
    if (hold !== undefined) {
      await new Promise<void>((resolve) => {
        hold.waiters.push(resolve);
        hold.onReached();
      });
    }
    const fault = this.faults.find((f) => f.operation === operation && f.remaining > 0 && f.matches(path));
    if (fault !== undefined) {
      fault.remaining -= 1;
      throw injectedError(fault.code, operation, path);
    }
  }

  get syncIsSkipped(): boolean {
    return this.skipSync;
  }

  async open(path: string, mode: OpenMode): Promise<StorageFile> {
    await this.enter('open', path);
    return new FaultInjectingFile(this, await this.inner.open(path, mode));
  }

  async readFile(path: string): Promise<Buffer> {
    await this.enter('readFile', path);
    return this.inner.readFile(path);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.enter('rename', from);
    return this.inner.rename(from, to);
  }

  async unlink(path: string): Promise<void> {
    await this.enter('unlink', path);
    return this.inner.unlink(path);
  }

  async readdir(path: string): Promise<string[]> {
    await this.enter('readdir', path);
    return this.inner.readdir(path);
  }

  async mkdir(path: string): Promise<void> {
    await this.enter('mkdir', path);
    return this.inner.mkdir(path);
  }

  async removeDirectory(path: string): Promise<void> {
    await this.enter('removeDirectory', path);
    return this.inner.removeDirectory(path);
  }

  async stat(path: string): Promise<FileStat | undefined> {
    await this.enter('stat', path);
    return this.inner.stat(path);
  }

  async syncDirectory(path: string): Promise<void> {
    await this.enter('syncDirectory', path);
    if (this.skipSync) return;
    return this.inner.syncDirectory(path);
  }
}

class FaultInjectingFile implements StorageFile {
  constructor(
    private readonly fs: FaultInjectingFs,
    private readonly inner: StorageFile,
  ) {}

  get path(): string {
    return this.inner.path;
  }

  async read(buffer: Buffer, bufferOffset: number, length: number, position: number): Promise<number> {
    await this.fs.enter('read', this.path);
    return this.inner.read(buffer, bufferOffset, length, position);
  }

  async write(data: Buffer, position: number): Promise<void> {
    await this.fs.enter('write', this.path);
    return this.inner.write(data, position);
  }

  async datasync(): Promise<void> {
    await this.fs.enter('datasync', this.path);
    if (this.fs.syncIsSkipped) return;
    return this.inner.datasync();
  }

  async truncate(length: number): Promise<void> {
    await this.fs.enter('truncate', this.path);
    return this.inner.truncate(length);
  }

  async size(): Promise<number> {
    await this.fs.enter('size', this.path);
    return this.inner.size();
  }

  async close(): Promise<void> {
    try {
      await this.fs.enter('close', this.path);
    } catch (error) {
      // Linux releases the descriptor even when close reports an error; so does this wrapper.
      await this.inner.close();
      throw error;
    }
    return this.inner.close();
  }
}

function injectedError(code: string, operation: FsOperation, path: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: injected fault, ${operation} '${path}'`);
  error.code = code;
  error.syscall = operation;
  error.path = path;
  return error;
}
