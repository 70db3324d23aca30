import { readFileSync } from 'node:fs';
import { PACKAGE_JSON } from './util/program-files.js';

/** The package version, read once from package.json next to src/ and dist/. */
export const VERSION: string = (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string }).version;
