// `kavka cat`: kcat for Kavka. Parses kcat's flags and runs the chosen mode; -L and -Q are here,
// -P and -C in their own files.
import { CliError } from './cli-error.js';
import { info, kavkaFor, type CatIo } from './cat-client.js';
import { formatMetadataJson, formatMetadataText, formatQueryJson, formatQueryText } from './cat-format.js';
import { CAT_USAGE, parseCatArgs, type CatOptions } from './cat-options.js';
import { describeSettings } from './cat-settings.js';
import { runCatConsumer } from './cat-consume.js';
import { runCatProducer } from './cat-produce.js';
import { OutputWriter } from './output.js';

async function listMetadata(options: CatOptions, io: CatIo): Promise<number> {
  const admin = kavkaFor(options).admin();
  try {
    const snapshot = await admin.fetchMetadataSnapshot(options.topic === undefined ? undefined : [options.topic]);
    const text = options.json ? formatMetadataJson(snapshot, options.topic) : formatMetadataText(snapshot, options.topic);
    const output = new OutputWriter(io.stdout, false);
    await output.write(Buffer.from(text, 'utf8'));
    await output.end();
    return 0;
  } finally {
    await admin.disconnect();
  }
}

async function queryOffsets(options: CatOptions, io: CatIo): Promise<number> {
  const admin = kavkaFor(options).admin();
  try {
    const answers = await admin.queryOffsets(options.queries);
    const list = answers.map((a) => ({ topic: a.topic, partition: a.partition, offset: a.offset, error: a.error?.code }));
    const output = new OutputWriter(io.stdout, false);
    await output.write(Buffer.from(options.json ? formatQueryJson(list) : formatQueryText(list), 'utf8'));
    await output.end();
    return 0;
  } finally {
    await admin.disconnect();
  }
}

/** Runs `kavka cat <argv>`; resolves with the exit code. Errors are thrown for main to report. */
export async function runCatCommand(argv: readonly string[], io: CatIo, stdinIsTTY: boolean): Promise<number> {
  const options = parseCatArgs(argv, { stdinIsTTY });
  if (options.help) {
    io.stdout.write(CAT_USAGE);
    return 0;
  }
  if (options.listSettings) {
    io.stdout.write(`${describeSettings()}\n`);
    return 0;
  }
  if (options.modeAutoSelected) info(io, options, 1, `Auto-selecting ${options.mode === 'C' ? 'Consumer' : 'Producer'} mode (use -P or -C to override)`);
  switch (options.mode) {
    case 'P':
      return runCatProducer(options, io);
    case 'C':
      return runCatConsumer(options, io);
    case 'L':
      return listMetadata(options, io);
    case 'Q':
      return queryOffsets(options, io);
    default:
      throw new CliError(`unknown mode ${String(options.mode)}`);
  }
}
