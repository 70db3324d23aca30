/**
 * Files of the program found from its own place. This module is one folder below dist/ (or
 * src/), and so is the bundle it is compiled into (dist/bundle/, see scripts/bundle.js), so
 * the same relative paths hold whichever of the two runs.
 */

/** package.json at the root of the package. */
export const PACKAGE_JSON = new URL('../../package.json', import.meta.url);

/** A compiled module run as a worker thread, given from dist/ (such as `snapshots/read-worker.js`). */
export const workerFile = (path: string): URL => new URL(`../${path}`, import.meta.url);

/** Worker threads need compiled .js workers: from the TypeScript sources (tests) there are none. */
export const COMPILED = !import.meta.url.endsWith('.ts');

/** What the package ships for JupyterHub: the pre_spawn_hook and its error template. */
export const JUPYTERHUB_FILES = new URL('../../share/jupyterhub/', import.meta.url);
