// `kavka broker --config server.properties [--override key=value ...]`: runs one node until
// SIGTERM or SIGINT, then shuts down cleanly within shutdown.timeout.ms. A second signal, or the
// bound passing, exits at once (the log recovers on the next start). If the metadata log fails
// (a disk error under its store) the process halts with EXIT_METADATA_LOG_FAILED, as Kafka halts:
// the node can no longer follow the cluster's metadata, so it must not go on serving, and a
// supervisor (docker's restart policy, systemd) starts it again through recovery.
import { KavkaError } from '../util/errors.js';
import { describeBrokerConfigKeys, loadBrokerConfig } from '../config/index.js';
import { createLogger } from '../util/logger.js';
import { startBroker, type Broker } from '../broker/index.js';
import { EXIT_METADATA_LOG_FAILED } from './exit-codes.js';

const USAGE = `usage: kavka broker [--config server.properties] [--override key=value ...]

Runs one Kavka node. Config precedence: --override > KAVKA_<KEY> environment > file > default.
  --config FILE       a Java-style properties file with Kafka's key names
  --override K=V      set one key (repeatable)
  --help-config       list every key with its default
  --exit-with-parent  stop cleanly when stdin closes (used by npm start)

Exit codes: 0 after a clean shutdown; 1 when start-up or shutdown failed; 3 when the metadata
log failed (a disk error): the node halts at once and its logs recover on the next start.
`;

export async function runBrokerCommand(argv: string[]): Promise<void> {
  let file: string | undefined;
  const overrides: string[] = [];
  let exitWithParent = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      const value = argv[++i];
      if (value === undefined) throw new KavkaError('INVALID_CONFIG', `${arg} needs a value`);
      return value;
    };
    if (arg === '--config' || arg === '-c') file = next();
    else if (arg.startsWith('--config=')) file = arg.slice('--config='.length);
    else if (arg === '--override') overrides.push(next());
    else if (arg.startsWith('--override=')) overrides.push(arg.slice('--override='.length));
    else if (arg === '--exit-with-parent') exitWithParent = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE);
      return;
    } else if (arg === '--help-config') {
      process.stdout.write(`${describeBrokerConfigKeys()}\n`);
      return;
    } else if (!arg.startsWith('-') && file === undefined) file = arg;
    else throw new KavkaError('INVALID_CONFIG', `unknown argument ${arg}\n${USAGE}`);
  }

  const config = loadBrokerConfig({ file, env: process.env, overrides });
  const logger = createLogger({ level: config.get('log.level') });
  // Signals are handled from before start-up, so a SIGTERM during recovery still closes cleanly
  // (once the node has started) instead of killing the process mid-write.
  let starting: Promise<Broker | undefined> = Promise.resolve(undefined);
  let signals = 0;
  const shutdown = (signal: string) => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting without waiting for the clean shutdown');
      process.exit(1);
    }
    const bound = config.get('shutdown.timeout.ms') + 5_000;
    const timer = setTimeout(() => {
      logger.error({ boundMs: bound }, 'clean shutdown did not finish in time; exiting');
      process.exit(1);
    }, bound);
    timer.unref();
    logger.info({ signal }, 'shutting down');
    starting.then((broker) => broker?.stop()).then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (exitWithParent) {
    // Started by `npm start`: if that supervisor goes away, stdin closes; stop cleanly.
    process.stdin.on('end', () => shutdown('parent exited'));
    process.stdin.on('error', () => shutdown('parent exited'));
    process.stdin.resume();
  }
  const halt = (error: Error) => {
    logger.fatal({ nodeId: config.nodeId, err: error, exitCode: EXIT_METADATA_LOG_FAILED }, 'halting: the metadata log failed. Fix the disk (space, permissions, hardware) and start the node again; it recovers its logs at start-up');
    logger.flush();
    process.exit(EXIT_METADATA_LOG_FAILED);
  };
  const started = startBroker({ config, logger, onFatal: halt });
  starting = started.catch(() => undefined);
  await started;
}
