// kcat's output formats, byte for byte where kcat defines them. Pure functions; the callers write
// the returned bytes.
//
// -f tokens: %t topic, %p partition, %o offset, %k key, %K key length (-1 for null), %s value,
// %S value length (-1 for null), %R value length as 4 bytes big-endian (-1 for null), %T
// timestamp (ms), %h headers as k=v,k2=v2 (NULL for a null value), %% a percent sign. Literal
// text takes \n \t \r, \xHH and \NNN (decimal) escapes. %k and %s print nothing for an empty or
// null field, or -Z's NULL string when set.
import { CliError } from './cli-error.js';
import type { KafkaMessage, MetadataSnapshot } from '../client/index.js';
import type { ErrorName } from '../util/errors.js';

export type FormatToken =
  | { kind: 'text'; bytes: Buffer }
  | { kind: 'topic' | 'partition' | 'offset' | 'key' | 'keyLength' | 'value' | 'valueLength' | 'valueLengthBinary' | 'timestamp' | 'headers' };

const TOKEN_KINDS: Record<string, Exclude<FormatToken['kind'], 'text'>> = {
  t: 'topic',
  p: 'partition',
  o: 'offset',
  k: 'key',
  K: 'keyLength',
  s: 'value',
  S: 'valueLength',
  R: 'valueLengthBinary',
  T: 'timestamp',
  h: 'headers',
};

/** kcat's escape handling for literal format text (fmt_add). */
export function unescapeFormatText(text: string): Buffer {
  const out: number[] = [];
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c !== 0x5c /* \ */ || i + 1 >= bytes.length) {
      out.push(c);
      continue;
    }
    const next = String.fromCharCode(bytes[++i]);
    if (next === 't') out.push(0x09);
    else if (next === 'n') out.push(0x0a);
    else if (next === 'r') out.push(0x0d);
    else if (next === 'x') {
      const match = /^[0-9a-fA-F]{1,2}/.exec(bytes.subarray(i + 1, i + 3).toString('latin1'));
      if (match === null) out.push(0x78);
      else {
        out.push(parseInt(match[0], 16));
        i += match[0].length;
      }
    } else if (next >= '0' && next <= '9') {
      const match = /^\d{1,3}/.exec(bytes.subarray(i, i + 3).toString('latin1')) as RegExpExecArray;
      out.push(Number(match[0]) & 0xff);
      i += match[0].length - 1;
    } else out.push(bytes[i]);
  }
  return Buffer.from(out);
}

/** kcat's parse_delim: \n, \t and \xHH in a delimiter given to -D or -K. */
export function parseDelimiter(text: string): Buffer {
  const out: number[] = [];
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x5c && i + 1 < bytes.length) {
      const next = String.fromCharCode(bytes[i + 1]);
      if (next === 'n' || next === 't') {
        out.push(next === 'n' ? 0x0a : 0x09);
        i++;
        continue;
      }
      if (next === 'x') {
        const match = /^[0-9a-fA-F]{1,2}/.exec(bytes.subarray(i + 2, i + 4).toString('latin1'));
        if (match === null) throw new CliError(`delimiter ${text} expects a hex number after \\x`);
        out.push(parseInt(match[0], 16));
        i += 1 + match[0].length;
        continue;
      }
    }
    out.push(bytes[i]);
  }
  return Buffer.from(out);
}

export function parseFormat(format: string): FormatToken[] {
  const tokens: FormatToken[] = [];
  let text = '';
  const flush = () => {
    if (text.length > 0) tokens.push({ kind: 'text', bytes: unescapeFormatText(text) });
    text = '';
  };
  for (let i = 0; i < format.length; i++) {
    const c = format[i];
    if (c !== '%') {
      text += c;
      continue;
    }
    const next = format[++i];
    if (next === undefined) throw new CliError('-f: empty formatter at the end of the format');
    if (next === '%') {
      text += '%';
      continue;
    }
    const kind = TOKEN_KINDS[next];
    if (kind === undefined) throw new CliError(`-f: unsupported formatter %${next}`);
    flush();
    tokens.push({ kind });
  }
  flush();
  return tokens;
}

/** kcat's default format: "%s<delim>", or "%k<keydelim>%s<delim>" with -K. */
export function defaultFormat(delimiter: Buffer, keyDelimiter: Buffer | undefined): FormatToken[] {
  const tokens: FormatToken[] = [];
  if (keyDelimiter !== undefined) tokens.push({ kind: 'key' }, { kind: 'text', bytes: keyDelimiter });
  tokens.push({ kind: 'value' }, { kind: 'text', bytes: delimiter });
  return tokens;
}

export interface FormatContext {
  topic: string;
  partition: number;
  /** -Z: what %k and %s print for a null (or empty) field. */
  nullString: Buffer | undefined;
}

function headersText(message: KafkaMessage): Buffer {
  const parts: Buffer[] = [];
  message.headerList.forEach((h, i) => {
    parts.push(Buffer.from(`${i > 0 ? ',' : ''}${h.key}=`, 'utf8'));
    if (h.value === null) parts.push(Buffer.from('NULL'));
    else parts.push(h.value);
  });
  return Buffer.concat(parts);
}

export function formatMessage(tokens: readonly FormatToken[], message: KafkaMessage, context: FormatContext): Buffer {
  const parts: Buffer[] = [];
  for (const token of tokens) {
    switch (token.kind) {
      case 'text':
        parts.push(token.bytes);
        break;
      case 'topic':
        parts.push(Buffer.from(context.topic, 'utf8'));
        break;
      case 'partition':
        parts.push(Buffer.from(String(context.partition)));
        break;
      case 'offset':
        parts.push(Buffer.from(message.offset));
        break;
      case 'key':
        if (message.key !== null && message.key.length > 0) parts.push(message.key);
        else if (context.nullString !== undefined) parts.push(context.nullString);
        break;
      case 'keyLength':
        parts.push(Buffer.from(String(message.key === null ? -1 : message.key.length)));
        break;
      case 'value':
        if (message.value !== null && message.value.length > 0) parts.push(message.value);
        else if (context.nullString !== undefined) parts.push(context.nullString);
        break;
      case 'valueLength':
        parts.push(Buffer.from(String(message.value === null ? -1 : message.value.length)));
        break;
      case 'valueLengthBinary': {
        const length = Buffer.alloc(4);
        length.writeInt32BE(message.value === null ? -1 : message.value.length);
        parts.push(length);
        break;
      }
      case 'timestamp':
        parts.push(Buffer.from(message.timestamp));
        break;
      case 'headers':
        parts.push(headersText(message));
        break;
    }
  }
  return Buffer.concat(parts);
}

/**
 * kcat -J for one message: topic, partition, offset, tstype, ts, broker, headers (only when the
 * record has headers: alternating key and value strings), key, payload; then the delimiter.
 */
export function formatMessageJson(message: KafkaMessage, context: { topic: string; partition: number; brokerId: number }, delimiter: Buffer): Buffer {
  const object: Record<string, unknown> = {
    topic: context.topic,
    partition: context.partition,
    offset: Number(message.offset),
    tstype: message.timestampType === 'LogAppendTime' ? 'logappend' : 'create',
    ts: Number(message.timestamp),
    broker: context.brokerId,
  };
  if (message.headerList.length > 0) object.headers = message.headerList.flatMap((h) => [h.key, h.value === null ? null : h.value.toString('utf8')]);
  object.key = message.key === null ? null : message.key.toString('utf8');
  object.payload = message.value === null ? null : message.value.toString('utf8');
  return Buffer.concat([Buffer.from(JSON.stringify(object), 'utf8'), delimiter]);
}

// ---------------------------------------------------------------- metadata (-L)

const ERROR_TEXT: Partial<Record<ErrorName, string>> = {
  UNKNOWN_TOPIC_OR_PARTITION: 'Broker: Unknown topic or partition',
  LEADER_NOT_AVAILABLE: 'Broker: Leader not available',
  NOT_LEADER_OR_FOLLOWER: 'Broker: Not leader for partition',
  INVALID_TOPIC_EXCEPTION: 'Broker: Invalid topic',
  OFFSET_OUT_OF_RANGE: 'Broker: Offset out of range',
  REPLICA_NOT_AVAILABLE: 'Broker: Replica not available',
};

/** librdkafka's rd_kafka_err2str text for the errors kcat prints, else "Broker: <NAME>". */
export function errorText(code: ErrorName): string {
  return ERROR_TEXT[code] ?? `Broker: ${code}`;
}

function originatingName(snapshot: MetadataSnapshot): string {
  const broker = snapshot.brokers.find((b) => b.nodeId === snapshot.answeringNodeId);
  return `${broker?.address ?? snapshot.answeringAddress}/${snapshot.answeringNodeId}`;
}

/** kcat -L text (metadata_print). */
export function formatMetadataText(snapshot: MetadataSnapshot, topic: string | undefined): string {
  const lines: string[] = [];
  lines.push(`Metadata for ${topic ?? 'all topics'} (from broker ${snapshot.answeringNodeId}: ${originatingName(snapshot)}):`);
  lines.push(` ${snapshot.brokers.length} brokers:`);
  for (const b of snapshot.brokers) lines.push(`  broker ${b.nodeId} at ${b.address}${b.nodeId === snapshot.controllerId ? ' (controller)' : ''}`);
  lines.push(` ${snapshot.topics.length} topics:`);
  for (const t of snapshot.topics) {
    let line = `  topic "${t.name}" with ${t.partitions.length} partitions:`;
    if (t.errorCode !== 'NONE') line += ` ${errorText(t.errorCode)}${t.errorCode === 'LEADER_NOT_AVAILABLE' ? ' (try again)' : ''}`;
    lines.push(line);
    for (const p of t.partitions) {
      let pl = `    partition ${p.partition}, leader ${p.leader}, replicas: ${p.replicas.join(',')}, isrs: ${p.isr.join(',')}`;
      if (p.errorCode !== 'NONE') pl += `, ${errorText(p.errorCode)}`;
      lines.push(pl);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** kcat -L -J (metadata_print_json), followed by a newline. */
export function formatMetadataJson(snapshot: MetadataSnapshot, topic: string | undefined): string {
  const object = {
    originating_broker: { id: snapshot.answeringNodeId, name: originatingName(snapshot) },
    query: { topic: topic ?? '*' },
    controllerid: snapshot.controllerId,
    brokers: snapshot.brokers.map((b) => ({ id: b.nodeId, name: b.address })),
    topics: snapshot.topics.map((t) => ({
      topic: t.name,
      ...(t.errorCode !== 'NONE' ? { error: errorText(t.errorCode) } : {}),
      partitions: t.partitions.map((p) => ({
        partition: p.partition,
        ...(p.errorCode !== 'NONE' ? { error: errorText(p.errorCode) } : {}),
        leader: p.leader,
        replicas: p.replicas.map((id) => ({ id })),
        isrs: p.isr.map((id) => ({ id })),
      })),
    })),
  };
  return `${JSON.stringify(object)}\n`;
}

// ---------------------------------------------------------------- offsets query (-Q)

export interface QueriedOffset {
  topic: string;
  partition: number;
  offset: string;
  error?: ErrorName;
}

function sortQueried(list: readonly QueriedOffset[]): QueriedOffset[] {
  return [...list].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
}

/** kcat -Q text (partition_list_print): "topic [p] offset N", sorted by topic and partition. */
export function formatQueryText(list: readonly QueriedOffset[]): string {
  return sortQueried(list)
    .map((q) => `${q.topic} [${q.partition}] offset ${q.offset}${q.error === undefined ? '' : `: ${errorText(q.error)}`}\n`)
    .join('');
}

/**
 * kcat -Q -J: { "<topic>": { "topic": .., "<p>": { "partition", "offset"[, "error"] } } }, then a
 * newline. Built by hand: a JS object would put the numeric partition keys before "topic".
 */
export function formatQueryJson(list: readonly QueriedOffset[]): string {
  const topics: string[] = [];
  let current: string | undefined;
  let members: string[] = [];
  const close = () => {
    if (current !== undefined) topics.push(`${JSON.stringify(current)}:{${members.join(',')}}`);
  };
  for (const q of sortQueried(list)) {
    if (q.topic !== current) {
      close();
      current = q.topic;
      members = [`"topic":${JSON.stringify(q.topic)}`];
    }
    const entry = { partition: q.partition, offset: Number(q.offset), ...(q.error === undefined ? {} : { error: errorText(q.error) }) };
    members.push(`${JSON.stringify(String(q.partition))}:${JSON.stringify(entry)}`);
  }
  close();
  return `{${topics.join(',')}}\n`;
}
