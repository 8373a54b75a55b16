// A RaftStorage whose writes can be switched to fail, for debug.fault.injection.enable (the
// chaos harness's "the metadata disk is full" on real processes). Reads and close pass through.
// Only the broker's debug path wraps a store in it; production stores are never wrapped.
import { KavkaError } from '../util/errors.js';
import type { PersistWrite, RaftStorage } from './raft-storage.js';
import type { Snapshot } from './types.js';

export class FaultSwitchRaftStorage implements RaftStorage {
  private errno: string | undefined;

  constructor(
    private readonly inner: RaftStorage,
    private readonly directory: string,
  ) {}

  /** From now on persist() and compact() fail with `errno`; null makes them succeed again. */
  failWrites(errno: string | null): void {
    this.errno = errno ?? undefined;
  }

  load(): ReturnType<RaftStorage['load']> {
    return this.inner.load();
  }

  persist(write: PersistWrite): Promise<void> {
    return this.errno === undefined ? this.inner.persist(write) : Promise.reject(this.failure('persist'));
  }

  compact(snapshot: Snapshot): Promise<void> {
    return this.errno === undefined ? this.inner.compact(snapshot) : Promise.reject(this.failure('compact'));
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private failure(operation: string): KavkaError {
    return new KavkaError('KAFKA_STORAGE_ERROR', `${operation} of the Raft store in ${this.directory} failed: ${this.errno} (injected through POST /debug/storage-fault)`);
  }
}
