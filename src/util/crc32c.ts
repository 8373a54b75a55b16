// CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2. Computed by @node-rs/crc32,
// which uses the CPU's CRC instructions: the broker checks every batch it accepts and every batch
// it recovers, so this sits on the hot path.
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

export function crc32c(data: Uint8Array): number {
  return nativeCrc32c(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)) >>> 0;
}
