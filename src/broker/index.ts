export { startBroker, logConfigFor, RAFT_DIRECTORY, type Broker, type StartBrokerOptions } from './broker-node.js';
