export { startBrokerProcess, KAVKA_CLI, type BrokerProcess } from './broker-process.js';
