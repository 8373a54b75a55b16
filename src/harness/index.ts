export { startBrokerProcess, KAVKA_CLI, type BrokerProcess } from './broker-process.js';
export { FaultProxy, ProxyMesh, type CutMode, type ProxyMode, type FaultProxyOptions, type FaultProxyStats, type MeshTargets } from './fault-proxy.js';
