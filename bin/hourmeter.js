#!/usr/bin/env node
// Thin launcher: the compiled program lives in dist/ (built by `npm install` / `npm run build`).
import { main } from '../dist/cli/main.js';

// `hourmeter top | head`: a reader that stops early is not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await main(process.argv);
