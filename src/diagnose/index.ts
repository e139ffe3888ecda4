export * from './diagnose';
export * from './sources';
