import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';

export interface BundleOptions {
  /**
   * Packages left out of the bundle and imported by absolute path at run time:
   * native addons cannot be bundled. Default `['better-sqlite3']`.
   */
  nativePackages?: readonly string[];
  /** Where bundles are written (default: a folder in the OS temp directory). */
  outDir?: string;
}

/**
 * Bundles a TypeScript (or JavaScript) entry and everything it imports into one
 * plain ESM file that `node` runs without a TypeScript loader.
 *
 * Why: loading a TypeScript loader costs about a second of CPU per process on a
 * 2-core machine; a bundle starts in tens of milliseconds, so a thousand
 * processes can be ready in well under two minutes. Bundles are content-addressed,
 * so calling this again for the same sources reuses the file.
 */
export async function bundleEntry(entry: string, options: BundleOptions = {}): Promise<string> {
  const { nativePackages = ['better-sqlite3'], outDir = join(tmpdir(), 'repo-launcher') } = options;
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    logLevel: 'silent',
    banner: { js: requireShim },
    plugins: [externalNativePackages(nativePackages), keepImportMetaUrl()],
  });
  const output = result.outputFiles[0];
  if (output === undefined) throw new Error(`bundleEntry: esbuild produced no output for ${entry}`);
  const hash = createHash('sha256').update(output.contents).digest('hex').slice(0, 16);
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `worker-${hash}.mjs`);
  // Written under a name of its own, then renamed into place: two launches of the same entry at
  // once (threads and processes) must never start a worker on a bundle the other is rewriting
  // (a fresh-clone CI run saw "SyntaxError: Unexpected end of input" there).
  const partial = `${file}.${process.pid}.${randomUUID()}.tmp`;
  // fd-safe: writes a bundle, never a database
  writeFileSync(partial, output.contents);
  renameSync(partial, file);
  return file;
}

// Bundled CommonJS dependencies call require() for Node's built-ins. Spelled in pieces so that
// keepImportMetaUrl, which rewrites that expression in sources, leaves this banner alone.
const bundleUrl = ['import', 'meta', 'url'].join('.');
const requireShim = `import { createRequire as __launcherRequire } from 'node:module'; const require = __launcherRequire(${bundleUrl});`;

/** Resolves native packages from the importing file and imports them by absolute path. */
function externalNativePackages(names: readonly string[]): Plugin {
  const filter = new RegExp(`^(${names.map((name) => name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$`);
  return {
    name: 'external-native-packages',
    setup(esbuild) {
      esbuild.onResolve({ filter }, (args) => ({
        path: createRequire(join(args.resolveDir, 'noop.js')).resolve(args.path),
        external: true,
      }));
    },
  };
}

/**
 * In a bundle every module shares the bundle's `import.meta.url`. Our sources use
 * it to find files next to them (the migrations folder), so each file keeps its own.
 */
function keepImportMetaUrl(): Plugin {
  return {
    name: 'keep-import-meta-url',
    setup(esbuild) {
      esbuild.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, (args) => {
        if (args.path.includes(`${'/'}node_modules${'/'}`)) return undefined;
        // fd-safe: reads a source file being bundled
        const source = readFileSync(args.path, 'utf8');
        if (!source.includes('import.meta.url')) return undefined;
        const extension = extname(args.path).slice(1).replace(/^[cm]/, '');
        return {
          contents: source.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
          loader: extension as 'ts' | 'tsx' | 'js' | 'jsx',
          resolveDir: dirname(args.path),
        };
      });
    },
  };
}
