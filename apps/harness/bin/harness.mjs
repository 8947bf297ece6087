#!/usr/bin/env node
// `pnpm harness` from the workspace root runs this bin (pnpm runs an unknown command as `pnpm exec`),
// not a package script: pnpm decorates a failing script with its own lines (`ELIFECYCLE ...`), which
// would bury the harness's message and exit code under noise.
import { register } from 'tsx/esm/api';

register();
const { runAsProgram } = await import('../src/cli.ts');
runAsProgram();
