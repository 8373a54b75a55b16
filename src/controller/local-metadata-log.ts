// The metadata log of a single node: metadata records as lines in one file, each line
// `<crc32c hex> <json>`, fsynced before a change is acknowledged. On open, replay stops at the
// first torn or corrupt line and the file is cut there (a crash mid-append loses only the
// unacknowledged change). The Raft step replaces this file with the replicated metadata log;
// the records and the image stay the same.
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readFileSync, writeSync, existsSync } from 'node:fs';
import { crc32c } from '../util/crc32c.js';
import type { Logger } from '../util/logger.js';
import type { MetadataRecord } from './metadata-records.js';

export class LocalMetadataLog {
  private constructor(
    private readonly path: string,
    private fd: number,
  ) {}

  /** Opens (creating if needed) the log and returns it with every whole record in it. */
  static open(path: string, logger: Logger): { log: LocalMetadataLog; records: MetadataRecord[] } {
    const records: MetadataRecord[] = [];
    let validBytes = 0;
    if (existsSync(path)) {
      const text = readFileSync(path);
      let position = 0;
      while (position < text.length) {
        const end = text.indexOf(0x0a, position);
        if (end < 0) break;
        const line = text.subarray(position, end);
        const space = line.indexOf(0x20);
        if (space !== 8) break;
        const body = line.subarray(space + 1);
        if (line.subarray(0, 8).toString('latin1') !== crc32c(body).toString(16).padStart(8, '0')) break;
        records.push(JSON.parse(body.toString('utf8')) as MetadataRecord);
        position = end + 1;
        validBytes = position;
      }
      if (validBytes < text.length) {
        logger.warn({ path, bytesCut: text.length - validBytes, records: records.length }, 'metadata log had a torn tail; cut it at the last whole record');
      }
    }
    const fd = openSync(path, 'a+');
    if (existsSync(path)) {
      ftruncateSync(fd, validBytes);
      fdatasyncSync(fd);
    }
    return { log: new LocalMetadataLog(path, fd), records };
  }

  /** Appends records and fsyncs; returns once they are durable. */
  append(records: MetadataRecord[]): void {
    if (records.length === 0) return;
    const lines = records.map((record) => {
      const body = Buffer.from(JSON.stringify(record), 'utf8');
      return `${crc32c(body).toString(16).padStart(8, '0')} ${body.toString('utf8')}\n`;
    });
    writeSync(this.fd, lines.join(''));
    fdatasyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }

  toString(): string {
    return this.path;
  }
}
