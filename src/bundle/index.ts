export * from './bundle';
export * from './hash';
export * from '../common/layout';
export * from './manifest';
export * from './parse';
export * from './schema';
