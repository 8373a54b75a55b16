// `kavka cat` argument parsing, with kcat's flags and meanings. Pure: argv in, options out.
import { CliError } from './cli-error.js';
import { getopt } from './getopt.js';
import { applySetting, defaultCatSettings, type CatSettings } from './cat-settings.js';
import { defaultFormat, parseDelimiter, parseFormat, type FormatToken } from './cat-format.js';

export type CatMode = 'C' | 'P' | 'L' | 'Q';

/** Where -C starts in each partition. */
export type StartOffset =
  | { kind: 'beginning' }
  | { kind: 'end' }
  | { kind: 'stored' }
  | { kind: 'absolute'; offset: bigint }
  /** -o -N: N records before the end, per partition. */
  | { kind: 'tail'; count: bigint }
  /** -o s@ts: the first record with timestamp >= ts. */
  | { kind: 'timestamp'; timestamp: bigint };

export interface OffsetQuery {
  topic: string;
  partition: number;
  timestamp: bigint;
}

export interface CatOptions {
  mode: CatMode;
  /** No -C/-P/-L/-Q was given: chosen from whether stdin is a terminal, as kcat does. */
  modeAutoSelected: boolean;
  brokers: string[];
  topic: string | undefined;
  partition: number | undefined;
  queries: OffsetQuery[];
  delimiter: Buffer;
  keyDelimiter: Buffer | undefined;
  fixedKey: Buffer | undefined;
  headers: { key: string; value: Buffer | null }[];
  lineMode: boolean;
  files: string[];
  start: StartOffset;
  stopTimestamp: bigint | undefined;
  exitAtEnd: boolean;
  count: number | undefined;
  format: FormatToken[];
  json: boolean;
  settings: CatSettings;
  verbosity: number;
  unbuffered: boolean;
  nullString: Buffer | undefined;
  tee: boolean;
  help: boolean;
  listSettings: boolean;
}

/** kcat's option letters that kavka cat implements (a ':' follows those that take a value). */
const SPEC = 'PCLQt:p:b:z:o:eED:K:k:H:lc:f:JX:qvuZTm:hV';

export const DEFAULT_BOOTSTRAP = '127.0.0.1:9092';

function parseInteger(flag: string, value: string, min: number): number {
  if (!/^-?\d+$/.test(value)) throw new CliError(`-${flag} ${value}: expected an integer`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new CliError(`-${flag} ${value}: must be an integer >= ${min}`);
  return n;
}

/** kcat -o: beginning | end | stored | <N> | -<N> | s@<ms> | e@<ms> (e@ sets the stop instead). */
export function parseOffset(value: string): { start?: StartOffset; stopTimestamp?: bigint } {
  if (value === 'beginning') return { start: { kind: 'beginning' } };
  if (value === 'end') return { start: { kind: 'end' } };
  if (value === 'stored') return { start: { kind: 'stored' } };
  const at = /^([se])@(\d+)$/.exec(value);
  if (at !== null) return at[1] === 's' ? { start: { kind: 'timestamp', timestamp: BigInt(at[2]) } } : { stopTimestamp: BigInt(at[2]) };
  if (/^-\d+$/.test(value)) return { start: { kind: 'tail', count: -BigInt(value) } };
  if (/^\d+$/.test(value)) return { start: { kind: 'absolute', offset: BigInt(value) } };
  throw new CliError(`-o ${value}: expected beginning, end, stored, <offset>, -<count>, s@<timestamp ms> or e@<timestamp ms>`);
}

/** kcat -Q -t topic:partition:timestamp. */
export function parseQuery(value: string): OffsetQuery {
  const match = /^(.+):(\d+):(-?\d+)$/.exec(value);
  if (match === null) throw new CliError(`-t ${value}: expected "topic:partition:offset_or_timestamp"`);
  return { topic: match[1], partition: Number(match[2]), timestamp: BigInt(match[3]) };
}

/** kcat -H name=value (no '=' gives a header with a null value). */
export function parseHeader(value: string): { key: string; value: Buffer | null } {
  const eq = value.indexOf('=');
  if (eq < 0) return { key: value, value: null };
  return { key: value.slice(0, eq), value: Buffer.from(value.slice(eq + 1), 'utf8') };
}

export function parseCatArgs(argv: readonly string[], environment: { stdinIsTTY: boolean }): CatOptions {
  const { options, positionals } = getopt(argv, SPEC);
  let mode: CatMode | undefined;
  let brokers: string[] | undefined;
  let topic: string | undefined;
  let partition: number | undefined;
  const queries: OffsetQuery[] = [];
  const rawQueryTopics: string[] = [];
  let delimiter = '\n';
  let keyDelimiter: string | undefined;
  let fixedKey: Buffer | undefined;
  const headers: { key: string; value: Buffer | null }[] = [];
  let lineMode = false;
  let start: StartOffset = { kind: 'beginning' };
  let stopTimestamp: bigint | undefined;
  let exitAtEnd = false;
  let count: number | undefined;
  let format: string | undefined;
  let json = false;
  const settings = defaultCatSettings();
  let compression: string | undefined;
  let verbosity = 1;
  let unbuffered = false;
  let nullString: Buffer | undefined;
  let tee = false;
  let help = false;
  let listSettings = false;

  for (const { letter, value } of options) {
    const v = value as string;
    switch (letter) {
      case 'P':
      case 'C':
      case 'L':
      case 'Q':
        if (mode !== undefined && mode !== letter) throw new CliError(`do not mix modes: -${letter} seen when -${mode} already set`);
        mode = letter;
        break;
      case 't':
        rawQueryTopics.push(v);
        topic = v;
        break;
      case 'p':
        partition = parseInteger('p', v, 0);
        break;
      case 'b':
        brokers = v.split(',').map((b) => b.trim()).filter((b) => b.length > 0);
        break;
      case 'z':
        compression = v;
        break;
      case 'o': {
        const parsed = parseOffset(v);
        if (parsed.start !== undefined) start = parsed.start;
        if (parsed.stopTimestamp !== undefined) stopTimestamp = parsed.stopTimestamp;
        break;
      }
      case 'e':
        exitAtEnd = true;
        break;
      case 'E':
        // kcat: do not exit on non-fatal errors. Kavka cat retries retriable errors anyway.
        break;
      case 'D':
        delimiter = v;
        break;
      case 'K':
        keyDelimiter = v;
        break;
      case 'k':
        fixedKey = Buffer.from(v, 'utf8');
        break;
      case 'H':
        headers.push(parseHeader(v));
        break;
      case 'l':
        lineMode = true;
        break;
      case 'c':
        count = parseInteger('c', v, 1);
        break;
      case 'f':
        format = v;
        break;
      case 'J':
        json = true;
        break;
      case 'X':
        if (v === 'list' || v === 'help' || v === 'dump') listSettings = true;
        else applySetting(settings, v);
        break;
      case 'q':
        verbosity = 0;
        break;
      case 'v':
        verbosity++;
        break;
      case 'u':
        unbuffered = true;
        break;
      case 'Z':
        nullString = Buffer.from('NULL');
        break;
      case 'T':
        tee = true;
        break;
      case 'm':
        parseInteger('m', v, 0);
        break;
      case 'h':
      case 'V':
        help = true;
        break;
    }
  }

  const modeAutoSelected = mode === undefined;
  const resolvedMode: CatMode = mode ?? (environment.stdinIsTTY ? 'C' : 'P');
  if (compression !== undefined) applySetting(settings, `compression.codec=${compression}`);
  if (resolvedMode === 'Q') {
    for (const q of rawQueryTopics) queries.push(parseQuery(q));
    topic = undefined;
  }
  const result: CatOptions = {
    mode: resolvedMode,
    modeAutoSelected,
    brokers: brokers ?? settings.brokers ?? [DEFAULT_BOOTSTRAP],
    topic,
    partition,
    queries,
    delimiter: parseDelimiter(delimiter),
    keyDelimiter: keyDelimiter === undefined ? undefined : parseDelimiter(keyDelimiter),
    fixedKey,
    headers,
    lineMode,
    files: positionals,
    start,
    stopTimestamp,
    exitAtEnd,
    count,
    format: [],
    json,
    settings,
    verbosity,
    unbuffered,
    nullString,
    tee,
    help,
    listSettings,
  };
  if (help || listSettings) return result;
  validate(result, format);
  return result;
}

function validate(options: CatOptions, format: string | undefined): void {
  if (options.brokers.length === 0) throw new CliError('-b <broker,..> is empty');
  if ((options.mode === 'C' || options.mode === 'P') && options.topic === undefined) throw new CliError('-t <topic> missing', { usage: true });
  if (options.mode === 'Q' && options.queries.length === 0) throw new CliError('-Q requires one or more -t <topic>:<partition>:<timestamp>', { usage: true });
  if (options.files.length > 0 && options.mode !== 'P') throw new CliError('file list only allowed in producer (-P) mode', { usage: true });
  if (options.lineMode && options.files.length > 1) throw new CliError('only one file allowed for line mode (-l)');
  if (options.mode === 'P' && options.delimiter.length === 0) throw new CliError('message delimiter -D must not be empty when producing');
  if (options.mode === 'C') {
    if (options.start.kind === 'stored') throw new CliError('-o stored needs consumer groups, which are not available yet; use beginning, end, <offset>, -<count> or s@<ts>');
    options.format = format !== undefined ? parseFormat(format) : options.json ? [] : defaultFormat(options.delimiter, options.keyDelimiter);
  }
}

export const CAT_USAGE = `Usage: kavka cat <options> [file1 file2 .. ]
kcat's flags, for Kavka.

Modes:
  -C | -P | -L | -Q  consumer, producer, metadata list, query offsets by time
                     (without a mode: producer when stdin is not a terminal, else consumer)
General:
  -b <brokers,..>    bootstrap brokers (default ${DEFAULT_BOOTSTRAP})
  -t <topic>         topic to consume from, produce to or list
  -p <partition>     partition
  -X <prop=val>      client property (-X list shows the supported ones)
  -J                 JSON output (kcat's shapes)
  -D <delim>         message delimiter (default \\n)
  -K <delim>         key delimiter
  -q | -v            quiet | more verbose (stderr)
  -u                 unbuffered output
Producer:
  -z none|gzip       compression
  -k <key>           fixed key for every message
  -H <name=value>    add a header (repeatable)
  -l                 read lines of the file given as argument (else each file is one message)
  -c <cnt>           stop after <cnt> messages
  -T                 echo input to stdout
Consumer:
  -o <offset>        beginning | end | <N> | -<N> (N from the end, per partition) |
                     s@<ms> (first record at or after) | e@<ms> (stop at)
  -e                 exit when every partition reached its end
  -c <cnt>           exit after <cnt> messages
  -f <fmt>           output format: %t %p %o %k %K %s %S %R %T %h %% and \\n \\t \\r \\xHH
  -Z                 print NULL for null keys and values
Query (-Q):
  -t <t>:<p>:<ts>    offset of the first record at or after ts (repeatable)
`;
