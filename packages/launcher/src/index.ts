export { type BundleOptions, bundleEntry } from './bundle.ts';
export { type Fleet, type LaunchOptions, launch, type WorkerKind, type WorkerOutcome } from './launch.ts';
export type { SerializedError } from './protocol.ts';
