#!/usr/bin/env node
// Thin launcher: the compiled program lives in dist/ (built by `npm install` / `npm run build`),
// bundled into dist/bundle/ to start faster (see scripts/bundle.js); the modules themselves
// serve when the bundle is missing (a build by `tsc` alone).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const bundled = existsSync(new URL('../dist/bundle/main.cjs', import.meta.url));
const { main } = bundled ? createRequire(import.meta.url)('../dist/bundle/main.cjs') : await import('../dist/cli/main.js');

// `hourmeter top | head`: a reader that stops early is not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await main(process.argv);
