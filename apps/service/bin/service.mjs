#!/usr/bin/env node
// The service's entry point for supervisors and `pnpm service`: registers tsx (resolved from
// apps/service, so it works from any directory) and runs the CLI in this very process, which
// therefore receives SIGTERM and SIGINT itself.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
