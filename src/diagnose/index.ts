export * from './diagnose';
export * from './progress';
export * from './sources';
