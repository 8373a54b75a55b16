// InitProducerId for the idempotent producer (DESIGN.md section 4): without a producer id it asks
// for one; with one it asks for the next epoch of it (KIP-360), which the producer does when it
// bumps its epoch. The answer is checked before the producer stamps batches with it.
//
// Called by the Producer when it connects and when it bumps its epoch. Holds no state of its own:
// the Producer applies the answer to its IdempotentState (IdempotentState.bumped).
import { KavkaError } from '../util/errors.js';
import type { Cluster } from './cluster.js';
import { withRetry } from './retry.js';
import type { KavkaRpc } from './rpc.js';
import type { RetryOptions } from './types.js';

/** Largest producer epoch (int16). */
const MAX_PRODUCER_EPOCH = 32_767;

export interface ProducerIdAndEpoch {
  producerId: bigint;
  producerEpoch: number;
}

export interface InitProducerIdDependencies {
  cluster: Cluster;
  rpc: KavkaRpc;
  retry: RetryOptions;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
}

/**
 * InitProducerId through any broker (the controller first, then the others in turn), with the
 * client's retries on retriable errors. With `current`, asks for the next epoch of its producer id.
 */
export async function requestProducerId(deps: InitProducerIdDependencies, current: ProducerIdAndEpoch | undefined): Promise<ProducerIdAndEpoch> {
  const known = current === undefined ? {} : { producerId: current.producerId.toString(), producerEpoch: current.producerEpoch };
  const response = await withRetry(async (attempt) => deps.rpc.initProducerId(await brokerForAttempt(deps.cluster, attempt), { transactionalId: '', ...known }), {
    options: deps.retry,
    random: deps.random,
    sleep: deps.sleep,
    beforeRetry: () => deps.cluster.refresh([]),
  });
  const producerId = BigInt(response.producerId);
  const producerEpoch = response.producerEpoch;
  if (producerId < 0n || !Number.isInteger(producerEpoch) || producerEpoch < 0 || producerEpoch > MAX_PRODUCER_EPOCH) {
    throw new KavkaError('UNKNOWN_SERVER_ERROR', `InitProducerId answered producer id ${response.producerId} epoch ${producerEpoch}`, { retriable: false });
  }
  return { producerId, producerEpoch };
}

async function brokerForAttempt(cluster: Cluster, attempt: number): Promise<string> {
  const first = await cluster.anyBrokerAddress();
  const all = [first, ...cluster.describe().brokers.map((b) => b.address).filter((a) => a !== first)];
  return all[attempt % all.length];
}
