import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExampleFile, limiter, runExample, typeCheck, writeExamples } from './check.ts';
import { extractExamples, findReadmes } from './examples.ts';

/**
 * Every fenced TypeScript block of every README (root, packages/*, apps/*, and
 * the other Markdown guides: BENCHMARKS.md, CONTRIBUTING.md, docs/**)
 * type-checks with the workspace's compiler options, and every complete one runs
 * twice in a row in a fresh temporary directory, without an error (a second run
 * finds what the first left behind: a file, a stored unique id). See
 * examples.ts for the markers of fragments and of files other blocks use.
 */

const root = join(import.meta.dirname, '..', '..', '..');
const packageDir = join(import.meta.dirname, '..');
const outDir = join(packageDir, '.examples');
const runTimeoutMs = 90_000;
const atMostTwo = limiter(2);

const readmes = findReadmes(root);
const examples = readmes.flatMap((readme) =>
  // fd-safe: a README, never a database
  extractExamples(readme, readFileSync(join(root, readme), 'utf8')),
);

let files: ExampleFile[] = [];
let diagnostics = new Map<string, string[]>();
beforeAll(() => {
  rmSync(outDir, { recursive: true, force: true });
  files = writeExamples(outDir, examples);
  diagnostics = typeCheck(files, join(root, 'tsconfig.base.json'), packageDir);
}, 120_000);
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

const fileOf = (readme: string, line: number) =>
  files.find((file) => file.example.readme === readme && file.example.line === line) as ExampleFile;

it('finds the READMEs and their examples', () => {
  expect(readmes).toContain('README.md');
  expect(readmes).toContain('packages/metrics-repo/README.md');
  expect(examples.length).toBeGreaterThan(3);
});

describe.each(readmes.filter((readme) => examples.some((example) => example.readme === readme)))('%s', (readme) => {
  for (const example of examples.filter((candidate) => candidate.readme === readme)) {
    const name = `line ${example.line} (${example.kind === 'file' ? `file ${example.fileName}` : example.kind})`;

    it(`${name}: type-checks`, () => {
      expect(diagnostics.get(fileOf(readme, example.line).path)).toEqual([]);
    });

    if (example.kind !== 'complete') continue;
    it.concurrent(
      `${name}: runs twice in a row in a fresh directory`,
      async () => {
        const cwd = mkdtempSync(join(tmpdir(), 'readme-example-'));
        try {
          for (const attempt of ['first', 'second']) {
            const outcome = await atMostTwo(() => runExample(fileOf(readme, example.line).path, cwd, runTimeoutMs));
            const how = outcome.timedOut
              ? `still running after ${runTimeoutMs} ms`
              : `exit code ${outcome.code}${outcome.signal ? `, signal ${outcome.signal}` : ''}`;
            expect(
              { run: attempt, how, output: outcome.output },
              `${readme}:${example.line}, ${attempt} run: ${how}\n${outcome.output}`,
            ).toEqual({ run: attempt, how: 'exit code 0', output: expect.any(String) });
          }
        } finally {
          rmSync(cwd, { recursive: true, force: true });
        }
      },
      2 * runTimeoutMs + 30_000,
    );
  }
});
