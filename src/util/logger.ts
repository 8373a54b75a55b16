// pino JSON logs. Each component gets a child logger with its bindings (node id, component,
// topic-partition), so an operator can grep one partition's story out of a node's log.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(options: { level?: LevelWithSilent; nodeId?: number; destination?: NodeJS.WritableStream } = {}): Logger {
  const base = options.nodeId === undefined ? {} : { nodeId: options.nodeId };
  return pino(
    { level: options.level ?? 'info', base, timestamp: pino.stdTimeFunctions.isoTime },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A logger that drops everything, for tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
