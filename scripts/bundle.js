#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli/main.js and every module it imports) into a few CommonJS
// files in dist/bundle/, which bin/hourmeter.js loads. Start-up then reads and compiles a
// handful of files instead of some fifty ES modules, each resolved and linked on its own:
// about a fifth of a warm report's time. Modules imported on demand stay apart, one file each,
// so a command still loads only what it uses. Packages stay in node_modules.
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

const dist = new URL('../dist/', import.meta.url);
const bundle = await rolldown({
  input: { main: fileURLToPath(new URL('cli/main.js', dist)) },
  platform: 'node',
  // Packages and Node's own modules: everything not given by a path.
  external: (id) => !id.startsWith('.') && !id.startsWith('/'),
  logLevel: 'warn',
});
await bundle.write({ dir: fileURLToPath(new URL('bundle/', dist)), format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: '[name].cjs' });
await bundle.close();
