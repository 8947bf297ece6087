/**
 * Profiles the repository's hot path: runs repo-async under `node --cpu-prof`
 * and prints where the CPU time went, per function and per line, in µs per row.
 * `profile [runs] [repo-async|limit]`: limit shows the same costs without the repository.
 *
 * V8 charges the time spent inside a native call (better-sqlite3's `run`,
 * `exec`) to the JavaScript line that made it, so "statement.run" shows up as
 * the line calling it. The .cpuprofile file is kept for Chrome DevTools.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleEntry } from '@repo/launcher';
import { fullSizes } from '../config.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  positionTicks?: { line: number; ticks: number }[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const runs = Number(process.argv[2] ?? 3);
const scenario = process.argv[3] === 'limit' ? 'limit' : 'repo-async';
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write('usage: profile [runs] [repo-async|limit]\n');
  process.exit(2);
}
const rows = runs * fullSizes.rows;
const bundle = await bundleEntry(fileURLToPath(new URL('./target.ts', import.meta.url)));
const profileDirectory = mkdtempSync(join(tmpdir(), 'repo-bench-cpuprofile-'));
const child = spawnSync(
  process.execPath,
  [
    '--expose-gc',
    '--cpu-prof',
    `--cpu-prof-dir=${profileDirectory}`,
    '--cpu-prof-interval=100',
    bundle,
    String(runs),
    scenario,
  ],
  { stdio: 'inherit' },
);
if (child.status !== 0) throw new Error(`profile: the profiled run failed (exit ${child.status})`);
const profileFile = join(profileDirectory, readdirSync(profileDirectory)[0] ?? '');
// fd-safe: a CPU profile and a bundle, not databases
const profile = JSON.parse(readFileSync(profileFile, 'utf8')) as CpuProfile;
const bundleLines = readFileSync(bundle, 'utf8').split('\n'); // fd-safe: the profiled bundle

// Self time per node, from the samples and their time deltas (µs).
const selfMicros = new Map<number, number>();
let totalMicros = 0;
profile.samples.forEach((id, index) => {
  const delta = profile.timeDeltas[index] ?? 0;
  totalMicros += delta;
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + delta);
});

const perRow = (micros: number) => `${(micros / rows).toFixed(2).padStart(6)} µs/row`;
const share = (micros: number) => `${((100 * micros) / totalMicros).toFixed(1).padStart(5)}%`;
const where = (node: ProfileNode) =>
  node.callFrame.url === bundle || node.callFrame.url.endsWith(bundle)
    ? 'bundle'
    : node.callFrame.url.replace(/^.*node_modules\//, '');

const byFunction = new Map<string, { micros: number; nodes: ProfileNode[] }>();
for (const node of profile.nodes) {
  const micros = selfMicros.get(node.id) ?? 0;
  if (micros === 0) continue;
  const key = `${node.callFrame.functionName || '(anonymous)'} [${where(node) || 'native'}]`;
  const entry = byFunction.get(key) ?? { micros: 0, nodes: [] };
  entry.micros += micros;
  entry.nodes.push(node);
  byFunction.set(key, entry);
}

console.log(`\nCPU profile of ${runs} ${scenario} run(s), ${rows} rows: ${(totalMicros / 1000).toFixed(0)} ms sampled`);
console.log(`(${profileFile})\n`);
console.log('Self time by function:');
const top = [...byFunction].sort((a, b) => b[1].micros - a[1].micros).slice(0, 20);
for (const [name, { micros }] of top) console.log(`  ${perRow(micros)} ${share(micros)}  ${name}`);

console.log('\nWhere inside the bundled functions (lines with the most self time):');
const lineTicks = new Map<number, number>();
let ticks = 0;
for (const node of profile.nodes) {
  if (where(node) !== 'bundle') continue;
  for (const { line, ticks: count } of node.positionTicks ?? []) {
    lineTicks.set(line, (lineTicks.get(line) ?? 0) + count);
    ticks += count;
  }
}
// Ticks are samples; spread the bundle's sampled time over them.
const bundleMicros = [...byFunction.values()]
  .filter((entry) => entry.nodes.some((node) => where(node) === 'bundle'))
  .reduce((sum, entry) => sum + entry.micros, 0);
for (const [line, count] of [...lineTicks].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
  const micros = (count / ticks) * bundleMicros;
  console.log(`  ${perRow(micros)} ${share(micros)}  ${(bundleLines[line - 1] ?? '').trim().slice(0, 110)}`);
}
