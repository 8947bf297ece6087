import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleEntry } from '../src/index.ts';

describe('bundleEntry', () => {
  it('bundles an entry that imports the launcher itself, and each file keeps its own import.meta.url', async () => {
    const file = await bundleEntry(join(import.meta.dirname, 'fixtures', 'imports-launcher.ts'));
    expect(file.endsWith('.mjs')).toBe(true);
    expect(execFileSync(process.execPath, [file], { encoding: 'utf8' })).toBe('function own-url\n');
  });

  it('is content-addressed: the same sources give the same file', async () => {
    const entry = join(import.meta.dirname, 'fixtures', 'echo-worker.ts');
    expect(await bundleEntry(entry)).toBe(await bundleEntry(entry));
  });
});
