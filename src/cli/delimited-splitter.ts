// Splits a byte stream into messages at a delimiter (kcat -D, default "\n"). Pure and
// incremental: push() returns the messages completed by a chunk, end() the unterminated tail.
// Empty messages are dropped, as kcat drops them. A message is bounded: a run longer than
// maxMessageBytes without a delimiter is an error rather than unbounded memory.
import { CliError } from './cli-error.js';

export class DelimitedSplitter {
  private remainder: Buffer = Buffer.alloc(0);

  constructor(
    private readonly delimiter: Buffer,
    private readonly maxMessageBytes: number,
  ) {
    if (delimiter.length === 0) throw new CliError('the message delimiter must not be empty');
  }

  push(chunk: Buffer): Buffer[] {
    const data = this.remainder.length === 0 ? chunk : Buffer.concat([this.remainder, chunk]);
    const messages: Buffer[] = [];
    let start = 0;
    for (;;) {
      const at = data.indexOf(this.delimiter, start);
      if (at < 0) break;
      if (at > start) messages.push(data.subarray(start, at));
      start = at + this.delimiter.length;
    }
    // Copy the tail so the chunk it came from can be released.
    this.remainder = Buffer.from(data.subarray(start));
    if (this.remainder.length > this.maxMessageBytes) {
      throw new CliError(`a message is longer than ${this.maxMessageBytes} bytes without a delimiter; check -D`);
    }
    return messages;
  }

  end(): Buffer[] {
    const tail = this.remainder;
    this.remainder = Buffer.alloc(0);
    return tail.length > 0 ? [tail] : [];
  }
}

/** kcat -K: the part before the first key delimiter is the key; without one, no key. */
export function splitKey(message: Buffer, keyDelimiter: Buffer | undefined, nullEmpty: boolean): { key: Buffer | null; value: Buffer | null } | undefined {
  if (keyDelimiter === undefined) return undefined;
  const at = message.indexOf(keyDelimiter);
  if (at < 0) return undefined;
  let key: Buffer | null = message.subarray(0, at);
  let value: Buffer | null = message.subarray(at + keyDelimiter.length);
  if (nullEmpty) {
    if (key.length === 0) key = null;
    if (value.length === 0) value = null;
  }
  return { key, value };
}
