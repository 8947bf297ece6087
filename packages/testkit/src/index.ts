export { elsewhere } from './elsewhere.ts';
export { useTempDatabase, useTempDir } from './temp.ts';
