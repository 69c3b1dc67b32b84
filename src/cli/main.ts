#!/usr/bin/env node
/**
 * Entry point of the `redis-streams-rpc` bin (ESM only: `bin` in package.json
 * points at dist/esm/cli/main.js). Exit code 1 on any failure, with the
 * error's message (and code) on stderr, or `{ "error": ... }` with `--json`.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processOutput } from './output.js';
import { buildProgram, reportFailure } from './program.js';

/** The package's version: package.json is 2 levels up from src/cli, 3 from dist/esm/cli. */
function version(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'redis-streams-rpc' && typeof pkg.version === 'string') return pkg.version;
  }
  return 'unknown';
}

const out = processOutput();
try {
  await buildProgram(out, version()).parseAsync(process.argv);
} catch (err) {
  reportFailure(out, err, process.argv.includes('--json'));
  process.exitCode = 1;
}
