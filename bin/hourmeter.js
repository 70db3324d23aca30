#!/usr/bin/env node
// Thin launcher: the compiled program lives in dist/ (built by `npm install` / `npm run build`).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);
