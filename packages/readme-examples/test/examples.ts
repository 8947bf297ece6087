import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The TypeScript examples of the workspace's READMEs, and how each is checked.
 *
 * Every fenced block whose language is `ts` or `typescript` is an example. By
 * default it is complete: it must type-check and run, twice in a row, in a fresh
 * directory. Markers, in the fence's info string or in an HTML comment on the
 * line(s) just before it (invisible once rendered):
 *
 *   ```ts fragment                   type-checked only (it needs a test runner, a
 *   <!-- fragment -->                server, or names defined elsewhere)
 *
 *   <!-- fragment                    the same, with a hidden preamble: TypeScript put
 *   import type { X } from '...';    before the block for type-checking, to declare
 *   declare const x: X;              the names the block takes as given
 *   -->
 *
 *   ```ts file=worker.ts             written as worker.ts next to the README's other
 *                                    blocks (which import or launch it), type-checked,
 *                                    not run on its own
 */
export interface Example {
  /** The README, relative to the workspace root (`packages/launcher/README.md`). */
  readme: string;
  /** Line of the opening fence (1-based). */
  line: number;
  /** The block's code. */
  code: string;
  /** Hidden preamble for type-checking (empty when none). */
  preamble: string;
  kind: 'complete' | 'fragment' | 'file';
  /** The file name a `file=` block is written under. */
  fileName: string | undefined;
}

/** A README example that cannot be understood: the docs test reports it with its place. */
export class ExampleSyntaxError extends Error {
  override readonly name = 'ExampleSyntaxError';
}

const fenceOpen = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)(.*)$/;
const typescriptLanguages = new Set(['ts', 'typescript']);

/**
 * Every README.md of the workspace (the root's, then `packages/*` and `apps/*`,
 * sorted), then the root's other guides (`BENCHMARKS.md`, `CONTRIBUTING.md`...)
 * every Markdown file under `docs/` (the decision records), and every one under
 * a package's own `docs/`: a TypeScript example is checked wherever the docs show one.
 */
export function findReadmes(root: string): string[] {
  const readmes = [join(root, 'README.md')];
  for (const folder of ['packages', 'apps']) {
    const parent = join(root, folder);
    if (!existsSync(parent)) continue;
    for (const name of readdirSync(parent).sort()) {
      const readme = join(parent, name, 'README.md');
      if (existsSync(readme)) readmes.push(readme);
    }
  }
  for (const name of readdirSync(root).sort()) {
    if (name.endsWith('.md') && name !== 'README.md') readmes.push(join(root, name));
  }
  readmes.push(...markdownUnder(join(root, 'docs')));
  // A package's own guides (`packages/metrics-repo/docs/postgresql.md`), package by package.
  for (const folder of ['packages', 'apps']) {
    const parent = join(root, folder);
    if (!existsSync(parent)) continue;
    for (const name of readdirSync(parent).sort()) readmes.push(...markdownUnder(join(parent, name, 'docs')));
  }
  return readmes.filter((path) => existsSync(path)).map((path) => relative(root, path));
}

/** Markdown files under a folder, depth first, sorted; none when it does not exist. */
function markdownUnder(folder: string): string[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) return markdownUnder(path);
      return entry.isFile() && entry.name.endsWith('.md') ? [path] : [];
    });
}

/** The TypeScript examples of one README's text. Throws ExampleSyntaxError for an unknown marker or an unclosed fence. */
export function extractExamples(readme: string, text: string): Example[] {
  const lines = text.split('\n');
  const examples: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = fenceOpen.exec(lines[i] as string);
    if (open === null) continue;
    const [, indent = '', fence = '', language = '', rest = ''] = open;
    const close = lines.findIndex((line, j) => j > i && closesFence(line, fence));
    if (close === -1) throw new ExampleSyntaxError(`${readme}:${i + 1}: a code fence that is never closed`);
    if (typescriptLanguages.has(language.toLowerCase())) {
      const code = lines
        .slice(i + 1, close)
        .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
        .join('\n');
      examples.push(exampleOf(readme, i + 1, code, rest.trim().split(/\s+/).filter(Boolean), commentBefore(lines, i)));
    }
    i = close;
  }
  return examples;
}

function exampleOf(readme: string, line: number, code: string, words: string[], comment: string | undefined): Example {
  const place = `${readme}:${line}`;
  let kind: Example['kind'] = 'complete';
  let fileName: string | undefined;
  let preamble = '';
  for (const word of words) {
    if (word === 'fragment') kind = 'fragment';
    else if (word.startsWith('file=')) {
      kind = 'file';
      fileName = word.slice('file='.length);
      if (!/^[\w.-]+\.ts$/.test(fileName)) {
        throw new ExampleSyntaxError(`${place}: file= needs a plain .ts file name, got ${JSON.stringify(fileName)}`);
      }
    } else {
      throw new ExampleSyntaxError(`${place}: unknown marker ${JSON.stringify(word)} (known: fragment, file=NAME.ts)`);
    }
  }
  if (comment !== undefined && /^fragment\b/.test(comment)) {
    if (kind === 'file') throw new ExampleSyntaxError(`${place}: a file= block cannot also be a fragment`);
    kind = 'fragment';
    // The comment's first line may say why (`<!-- fragment: needs a server -->`); the lines after it are TypeScript.
    preamble = comment.split('\n').slice(1).join('\n').trim();
  }
  return { readme, line, code, preamble, kind, fileName };
}

/** A closing fence: only the fence's character, at least as many as the opening one. */
function closesFence(line: string, fence: string): boolean {
  const text = line.trim();
  return text.length >= fence.length && text === (fence.charAt(0) as string).repeat(text.length);
}

/** The content of an HTML comment that ends on the line just before line `index`, if any. */
function commentBefore(lines: readonly string[], index: number): string | undefined {
  const end = index - 1;
  if (end < 0 || !(lines[end] as string).trimEnd().endsWith('-->')) return undefined;
  for (let start = end; start >= 0; start--) {
    const line = lines[start] as string;
    const at = line.indexOf('<!--');
    if (at !== -1) {
      const text = [line.slice(at + 4), ...lines.slice(start + 1, end + 1)].join('\n');
      return text.slice(0, text.lastIndexOf('-->')).trim();
    }
  }
  return undefined;
}
