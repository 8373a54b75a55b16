// Real `kavka broker` processes for tests; the implementation is shared with the benchmark.
export { startBrokerProcess, type BrokerProcess } from '../../src/harness/broker-process.js';
