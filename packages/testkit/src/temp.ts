import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

/**
 * Call at the top of a `describe`: returns a function that makes a fresh
 * temporary directory, removed (with everything in it) after each test.
 */
export function useTempDir(prefix = 'repo-test-'): () => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}

/** Like {@link useTempDir}, but returns the path of a `metrics.db` (not yet created) in a fresh directory. */
export function useTempDatabase(prefix = 'repo-test-'): () => string {
  const tempDir = useTempDir(prefix);
  return () => join(tempDir(), 'metrics.db');
}
