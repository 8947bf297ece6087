import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExampleSyntaxError, extractExamples, findReadmes } from './examples.ts';

const readme = (...lines: string[]) => lines.join('\n');

describe('extractExamples', () => {
  it('ts and typescript blocks are examples, complete by default; other languages are not', () => {
    const examples = extractExamples(
      'README.md',
      readme(
        '# Title',
        '```ts',
        'const a = 1;',
        '```',
        '```sh',
        'pnpm test',
        '```',
        '```typescript',
        'let b;',
        '```',
        '```',
        'text',
        '```',
      ),
    );
    expect(examples).toEqual([
      { readme: 'README.md', line: 2, code: 'const a = 1;', preamble: '', kind: 'complete', fileName: undefined },
      { readme: 'README.md', line: 8, code: 'let b;', preamble: '', kind: 'complete', fileName: undefined },
    ]);
  });

  it('fragment markers: in the info string, or an HTML comment just before the fence, with a hidden preamble', () => {
    const [plain, marked, withPreamble, withReason] = extractExamples(
      'x/README.md',
      readme(
        '```ts fragment',
        'repo.close();',
        '```',
        '<!-- fragment -->',
        '```ts',
        'repo.close();',
        '```',
        '<!-- fragment',
        "import type { MetricsRepo } from '@repo/metrics-repo';",
        'declare const repo: MetricsRepo;',
        '-->',
        '```ts',
        'await repo.close();',
        '```',
        '<!-- fragment: needs a PostgreSQL server -->',
        '```ts',
        'connect();',
        '```',
      ),
    );
    expect([plain?.kind, marked?.kind, withPreamble?.kind, withReason?.kind]).toEqual([
      'fragment',
      'fragment',
      'fragment',
      'fragment',
    ]);
    expect(withPreamble?.preamble).toBe(
      "import type { MetricsRepo } from '@repo/metrics-repo';\ndeclare const repo: MetricsRepo;",
    );
    expect(withPreamble?.code).toBe('await repo.close();');
    expect(withReason?.preamble).toBe('');
  });

  it('a comment that is not right before the fence, or not a fragment marker, changes nothing', () => {
    const examples = extractExamples(
      'README.md',
      readme('<!-- fragment -->', '', '```ts', 'a();', '```', '<!-- note -->', '```ts', 'b();', '```'),
    );
    expect(examples.map((e) => e.kind)).toEqual(['complete', 'complete']);
  });

  it('file= blocks are named files other blocks use', () => {
    const [worker] = extractExamples('README.md', readme('```ts file=worker.ts', 'export {};', '```'));
    expect(worker).toMatchObject({ kind: 'file', fileName: 'worker.ts' });
  });

  it('indented fences (in a list) lose their indentation; longer fences can hold shorter ones', () => {
    const [listed, nested] = extractExamples(
      'README.md',
      readme('- step', '  ```ts', '  const x = 1;', '    const y = 2;', '  ```', '````ts', '```', '````'),
    );
    expect(listed?.code).toBe('const x = 1;\n  const y = 2;');
    expect(nested?.code).toBe('```');
  });

  it.each([
    [['```ts fragmnet', 'x', '```'], /README.md:1: unknown marker "fragmnet"/],
    [['```ts file=../x.ts', 'x', '```'], /file= needs a plain .ts file name/],
    [['text', '```ts', 'never closed'], /README.md:2: a code fence that is never closed/],
  ])('%j is refused, with its place', (lines, message) => {
    expect(() => extractExamples('README.md', readme(...lines))).toThrow(ExampleSyntaxError);
    expect(() => extractExamples('README.md', readme(...lines))).toThrow(message);
  });
});

describe('findReadmes', () => {
  it("READMEs first, then the root's other Markdown guides, then everything under docs/, then the packages' docs/", () => {
    const root = mkdtempSync(join(tmpdir(), 'find-readmes-'));
    try {
      const files = [
        'README.md',
        'CHANGELOG.md',
        'BENCHMARKS.md',
        'notes.txt',
        'packages/b/README.md',
        'packages/a/README.md',
        'packages/a/other.md',
        'packages/a/docs/guide.md',
        'apps/x/docs/deep/more.md',
        'apps/x/README.md',
        'docs/decisions/0002-b.md',
        'docs/decisions/0001-a.md',
        'docs/decisions/README.md',
        'docs/guide.md',
      ];
      for (const file of files) {
        mkdirSync(join(root, file, '..'), { recursive: true });
        writeFileSync(join(root, file), '# x\n'); // fd-safe: a Markdown file of the test's own
      }
      expect(findReadmes(root)).toEqual([
        'README.md',
        'packages/a/README.md',
        'packages/b/README.md',
        'apps/x/README.md',
        'BENCHMARKS.md',
        'CHANGELOG.md',
        'docs/decisions/0001-a.md',
        'docs/decisions/0002-b.md',
        'docs/decisions/README.md',
        'docs/guide.md',
        'packages/a/docs/guide.md',
        'apps/x/docs/deep/more.md',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
