export * from './broker-config.js';
