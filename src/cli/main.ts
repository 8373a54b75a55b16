// `kavka`: the command-line entry point (bin/kavka.js runs this file from dist/). Dispatches
// `broker`, `topic`, `controller` and `cat`. Output goes to process.stdout; diagnostics to
// process.stderr. A failure prints one line naming the Kafka error and exits 1.
import { runCatCommand } from './cat-command.js';
import { CAT_USAGE } from './cat-options.js';
import { CliError, describeError } from './cli-error.js';
import { CONTROLLER_USAGE, runControllerCommand } from './controller-command.js';
import { TOPIC_USAGE, runTopicCommand } from './topic-command.js';
import type { CatIo } from './cat-client.js';

const USAGE = `Usage: kavka <command> [options]

Commands:
  broker      run a Kavka node        (kavka broker --help)
  topic       create, list, describe, delete and configure topics   (kavka topic --help)
  controller  describe the controller quorum, add and remove voters   (kavka controller --help)
  cat         produce, consume, list metadata and query offsets with kcat's flags   (kavka cat -h)

Options:
  -h, --help   show this help
`;

function catIo(): CatIo {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    stderrIsTTY: process.stderr.isTTY === true,
    nowMs: () => Date.now(),
    onSignal: (handler) => {
      let count = 0;
      const listener = () => {
        // A second Ctrl-C leaves at once.
        if (++count > 1) process.exit(130);
        handler();
      };
      process.on('SIGINT', listener);
      process.on('SIGTERM', listener);
      return () => {
        process.off('SIGINT', listener);
        process.off('SIGTERM', listener);
      };
    },
  };
}

/** Waits until everything written to stdout and stderr has been handed to the OS. */
function drained(): Promise<void> {
  const flush = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => (stream.writableEnded ? resolve() : stream.write('', () => resolve())));
  return Promise.all([flush(process.stdout), flush(process.stderr)]).then(() => undefined);
}

async function main(argv: string[]): Promise<number | 'keep-running'> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'broker': {
      // Loaded only here: the broker pulls in storage, the server and their dependencies, which
      // the client commands do not need at start-up.
      const { runBrokerCommand } = await import('./broker-command.js');
      await runBrokerCommand(rest);
      return 'keep-running';
    }
    case 'topic':
    case 'topics':
      try {
        return await runTopicCommand(rest, process.stdout);
      } catch (error) {
        process.stderr.write(`Error: ${describeError(error)}\n`);
        if (error instanceof CliError && error.usage) process.stderr.write(TOPIC_USAGE);
        return error instanceof CliError ? error.exitCode : 1;
      }
    case 'controller':
      try {
        return await runControllerCommand(rest, process.stdout);
      } catch (error) {
        process.stderr.write(`Error: ${describeError(error)}\n`);
        if (error instanceof CliError && error.usage) process.stderr.write(CONTROLLER_USAGE);
        return error instanceof CliError ? error.exitCode : 1;
      }
    case 'cat':
      try {
        return await runCatCommand(rest, catIo(), process.stdin.isTTY === true);
      } catch (error) {
        process.stderr.write(`% ERROR: ${describeError(error)}\n`);
        if (error instanceof CliError && error.usage) process.stderr.write(CAT_USAGE);
        return error instanceof CliError ? error.exitCode : 1;
      }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      process.stderr.write(`kavka: unknown command "${command}"\n${USAGE}`);
      return 1;
  }
}

main(process.argv.slice(2)).then(
  async (code) => {
    if (code === 'keep-running') return;
    await drained();
    // Exit explicitly: a channel or timer left by a failed request must not keep the CLI alive.
    process.exit(code);
  },
  async (error: unknown) => {
    process.stderr.write(`kavka: ${describeError(error)}\n`);
    await drained();
    process.exit(1);
  },
);
