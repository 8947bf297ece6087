// The addon is optional: without a C toolchain the install goes on, and @repo/metrics-repo waits
// on timers instead of the turn (the portable path). One line says so; node-gyp's log is kept
// only when it fails, in build/build-addon.log.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';

const run = spawnSync('node-gyp', ['rebuild'], { encoding: 'utf8', shell: true });
if (run.status !== 0) {
  mkdirSync('build', { recursive: true });
  // fd-safe: the build's log, never a database
  writeFileSync('build/build-addon.log', `${run.stdout ?? ''}${run.stderr ?? ''}${run.error ?? ''}`);
  console.warn(
    '@repo/write-turn: the native addon was not built (see packages/write-turn/build/build-addon.log); @repo/metrics-repo will use its portable path (timers, no turn file)',
  );
}
