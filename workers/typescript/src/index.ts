// @temporal-batch/worker: page processors for Temporal Batch as Temporal
// activities in TypeScript. The wire contract is docs/processor-contract.md.

export * from './contract';
export * from './errors';
export { Page, type PageEnvironment, type Result } from './page';
export * from './processor';
export * from './config';
export { runWorker } from './run';
export { truncateUTF8, utf8Length, parseGoDuration } from './text';
