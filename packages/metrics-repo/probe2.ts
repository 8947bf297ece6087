import { statSync } from 'node:fs';
import { openMetricsRepo } from '@repo/metrics-repo';
import { loadWriteTurn, openWriteTurn } from '@repo/write-turn';

const path = process.argv[2]!;
const mode = process.argv[3];
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const step = (name: string, f: () => unknown) => {
  const c = cpu();
  const t = performance.now();
  const r = f();
  console.log(name.padEnd(12), (performance.now() - t).toFixed(3), 'wall', (cpu() - c).toFixed(3), 'cpu');
  return r;
};
if (mode === 'parts') {
  step('load', () => loadWriteTurn());
  const turn = step('openTurn', () => openWriteTurn(`${path}-turn`)) as ReturnType<typeof openWriteTurn>;
  step('stat', () => statSync(path));
  step('tryAcquire', () => turn.tryAcquire());
  step('post', () => turn.post(new Uint8Array(100)));
  step('close', () => turn.close());
} else {
  const holder = openWriteTurn(`${path}-turn`);
  holder.tryAcquire();
  let c = cpu();
  let t = performance.now();
  const repo = await openMetricsRepo({ path });
  console.log('open', (performance.now() - t).toFixed(2), 'wall', (cpu() - c).toFixed(2), 'cpu');
  c = cpu();
  t = performance.now();
  const p = repo.insert({ name: 'x', value: 1 });
  // answer as the holder would, from here: take and answer
  setTimeout(() => {
    for (const e of holder.take()) holder.answer(e.ticket, Buffer.from('{"i":1}'), true);
    holder.announce();
  }, 20);
  await p;
  console.log(
    'insert',
    (performance.now() - t).toFixed(2),
    'wall',
    (cpu() - c).toFixed(2),
    'cpu (incl holder answering)',
  );
  c = cpu();
  t = performance.now();
  await repo.close();
  console.log('close', (performance.now() - t).toFixed(2), 'wall', (cpu() - c).toFixed(2), 'cpu');
}
