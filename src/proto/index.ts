export * from './load.js';
export * from './error-details.js';
