#!/usr/bin/env node
// Empties the build folders before `npm run build`: tsc never deletes, so a module renamed or
// moved away would otherwise linger in dist/ and ship with the package.
import { rmSync } from 'node:fs';

for (const folder of ['dist', 'dist-tools']) rmSync(new URL(`../${folder}`, import.meta.url), { recursive: true, force: true });
