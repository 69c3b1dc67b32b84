// Builds ESM and CJS outputs with declarations. CJS gets its own package.json
// marker so Node treats dist/cjs/*.js as CommonJS inside a "type": "module" package.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';

const tsc = ['node_modules/typescript/bin/tsc'];
rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, [...tsc, '-p', 'tsconfig.json'], { stdio: 'inherit' });
execFileSync(process.execPath, [...tsc, '-p', 'tsconfig.cjs.json'], { stdio: 'inherit' });
mkdirSync('dist/cjs', { recursive: true });
writeFileSync('dist/cjs/package.json', JSON.stringify({ type: 'commonjs' }, null, 2) + '\n');
writeFileSync('dist/esm/package.json', JSON.stringify({ type: 'module' }, null, 2) + '\n');
