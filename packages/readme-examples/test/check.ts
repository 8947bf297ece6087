import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import type { Example } from './examples.ts';

/** An example written to disk, where the checks find it. */
export interface ExampleFile {
  example: Example;
  path: string;
  /** Lines put before the block (the hidden preamble): diagnostics there are the README comment's. */
  preambleLines: number;
}

/**
 * Writes each README's examples into a folder of its own under `outDir`, which
 * lies inside this package so that `@repo/*` and the other dependencies resolve
 * as they would for a user's file. A block is `example-<line>.ts`; a `file=`
 * block is written under its own name, next to the blocks that use it.
 */
export function writeExamples(outDir: string, examples: readonly Example[]): ExampleFile[] {
  return examples.map((example) => {
    const folder = join(outDir, example.readme.replace(/\/?README\.md$/, '').replace(/[^\w.-]+/g, '_') || 'root');
    mkdirSync(folder, { recursive: true });
    const path = join(folder, example.fileName ?? `example-${example.line}.ts`);
    const preamble = example.preamble === '' ? '' : `${example.preamble}\n`;
    // fd-safe: an example's source, written for tsc and tsx
    writeFileSync(path, `${preamble}${example.code}\n`);
    return { example, path, preambleLines: preamble === '' ? 0 : preamble.split('\n').length - 1 };
  });
}

/**
 * Type-checks every example in one program, with the workspace's compiler
 * options (`tsconfig.base.json`), each file a module of its own. Returns, per
 * file, its diagnostics as `README.md:line: message`.
 */
export function typeCheck(
  files: readonly ExampleFile[],
  tsconfigPath: string,
  packageDir: string,
): Map<string, string[]> {
  const config = ts.readConfigFile(tsconfigPath, (path) => ts.sys.readFile(path));
  if (config.error !== undefined) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'));
  const { options } = ts.parseJsonConfigFileContent({ ...config.config, files: [] }, ts.sys, packageDir);
  const program = ts.createProgram({
    rootNames: files.map((file) => file.path),
    // Blocks without imports are modules too: no block sees another's names.
    options: { ...options, noEmit: true, moduleDetection: ts.ModuleDetectionKind.Force },
  });
  const byPath = new Map(files.map((file) => [file.path, file]));
  const found = new Map<string, string[]>(files.map((file) => [file.path, []]));
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const file = diagnostic.file === undefined ? undefined : byPath.get(diagnostic.file.fileName);
    if (diagnostic.file === undefined || file === undefined) {
      // Not an example's own line (the options, a dependency's types): every example shares it.
      for (const list of found.values()) list.push(`TS${diagnostic.code}: ${message}`);
      continue;
    }
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    const where =
      line < file.preambleLines
        ? `${file.example.readme}:${file.example.line}: in the hidden preamble`
        : `${file.example.readme}:${file.example.line + 1 + line - file.preambleLines}`;
    found.get(file.path)?.push(`${where}: TS${diagnostic.code}: ${message}${hintFor(message)}`);
  }
  return found;
}

/** A missing `@repo/*` package is usually a missing dependency of this package, not a wrong example. */
function hintFor(message: string): string {
  const missing = /Cannot find module '(@repo\/[^/']+)/.exec(message)?.[1];
  return missing === undefined ? '' : ` (add "${missing}": "workspace:*" to packages/readme-examples/package.json)`;
}

export interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  timedOut: boolean;
}

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Runs one example file with tsx, in `cwd`, bounded by `timeoutMs`; stdout and stderr together. */
export function runExample(path: string, cwd: string, timeoutMs: number): Promise<RunOutcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, path], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '', FORCE_COLOR: '0', NO_COLOR: '1' },
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, timedOut });
    });
  });
}

/** At most `limit` tasks at a time (two cores: two examples at once). */
export function limiter(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running += 1;
    try {
      return await task();
    } finally {
      running -= 1;
      waiting.shift()?.();
    }
  };
}
