export { startBroker, logConfigFor, type Broker, type StartBrokerOptions } from './broker-node.js';
