// The metadata log of a single node: one line per committed change, `<crc32c hex> <json array of
// records>`, fsynced before the change is acknowledged. A change (a topic and all its
// partitions, say) is one line, so replay applies all of it or none. On open, replay stops at
// the first torn or corrupt line and the file is cut there (a crash mid-append loses only the
// unacknowledged change). The Raft step replaces this file with the replicated metadata log;
// the records and the image stay the same.
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readFileSync, writeSync, existsSync } from 'node:fs';
import { crc32c } from '../util/crc32c.js';
import { KavkaError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { MetadataRecord } from './metadata-records.js';

export class LocalMetadataLog {
  private failure: string | undefined;

  private constructor(
    private readonly path: string,
    private fd: number,
  ) {}

  /** Opens (creating if needed) the log and returns every record of its whole changes, in order. */
  static open(path: string, logger: Logger): { log: LocalMetadataLog; records: MetadataRecord[] } {
    const records: MetadataRecord[] = [];
    let validBytes = 0;
    if (existsSync(path)) {
      const text = readFileSync(path);
      let position = 0;
      while (position < text.length) {
        const end = text.indexOf(0x0a, position);
        const line = text.subarray(position, end < 0 ? text.length : end);
        const changes = end < 0 ? undefined : parseLine(line);
        if (changes === undefined) {
          // Only the last line can be torn by a crash. A bad line with whole lines after it is
          // corruption: replaying past it, or cutting there, would forget committed changes.
          const rest = end < 0 ? -1 : text.indexOf(0x0a, end + 1);
          if (rest >= 0) {
            throw new KavkaError('KAFKA_STORAGE_ERROR', `metadata log ${path} is corrupt at byte ${position} with committed changes after it; restore it from a backup (the node will not start on it)`);
          }
          break;
        }
        records.push(...changes);
        position = end + 1;
        validBytes = position;
      }
      if (validBytes < text.length) {
        logger.warn({ path, bytesCut: text.length - validBytes, records: records.length }, 'metadata log had a torn last change; cut it');
      }
    }
    const fd = openSync(path, 'a+');
    if (existsSync(path)) {
      ftruncateSync(fd, validBytes);
      fdatasyncSync(fd);
    }
    return { log: new LocalMetadataLog(path, fd), records };
  }

  /** Appends one change (its records as one line) and fsyncs; returns once it is durable. */
  append(records: MetadataRecord[]): void {
    if (this.failure !== undefined) {
      throw new KavkaError('KAFKA_STORAGE_ERROR', `the metadata log ${this.path} failed earlier (${this.failure}); restart the node to recover it`);
    }
    if (records.length === 0) return;
    const body = Buffer.from(JSON.stringify(records), 'utf8');
    try {
      writeSync(this.fd, `${crc32c(body).toString(16).padStart(8, '0')} ${body.toString('utf8')}\n`);
      fdatasyncSync(this.fd);
    } catch (error) {
      // A failed write may have left part of a line, and a failed fsync may have lost pages:
      // never write after either. The next start cuts the torn tail.
      this.failure = (error as Error).message;
      throw new KavkaError('KAFKA_STORAGE_ERROR', `cannot write the metadata log ${this.path}: ${this.failure}`, { cause: error });
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  toString(): string {
    return this.path;
  }
}

/** The records of one line, or undefined when the line is torn or its checksum does not match. */
function parseLine(line: Buffer): MetadataRecord[] | undefined {
  if (line.length < 10 || line[8] !== 0x20) return undefined;
  const body = line.subarray(9);
  if (line.subarray(0, 8).toString('latin1') !== crc32c(body).toString(16).padStart(8, '0')) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as MetadataRecord[];
  } catch {
    return undefined;
  }
}
