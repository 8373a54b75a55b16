// Codecs shared by the broker, the client and the CLI.
export * from './record-batch.js';
