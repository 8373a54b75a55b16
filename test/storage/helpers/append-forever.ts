// Child process for the kill -9 test: appends forever from several concurrent producers under
// flush.policy=batch and prints `ack <baseOffset> <tag>` once each append resolves. The parent
// kills it with SIGKILL at a random moment and checks every acknowledged batch survived.
// Usage: node --import tsx append-forever.ts <partition dir> <seed>
import { systemClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { openPartitionLog } from '../../../src/storage/index.js';
import { batch, testConfig, TP } from './fixtures.js';

const [directory, seedText] = process.argv.slice(2);
const PRODUCERS = 8;

async function main(): Promise<void> {
  const log = await openPartitionLog({ directory, topicPartition: TP, config: testConfig({ segmentBytes: 64 * 1024 }), clock: systemClock, logger: silentLogger() });
  process.stdout.write(`ready ${log.logEndOffset}\n`);
  let next = Number(seedText) * 1000;
  const producer = async () => {
    for (;;) {
      const tag = next++;
      const result = await log.appendAsLeader(batch({ records: 1 + (tag % 3), valueBytes: 50 + (tag % 400), tag }), 0);
      process.stdout.write(`ack ${result.baseOffset} ${tag}\n`);
    }
  };
  await Promise.all(Array.from({ length: PRODUCERS }, producer));
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
