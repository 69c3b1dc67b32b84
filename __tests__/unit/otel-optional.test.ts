// @opentelemetry/api is an optional peer dependency: the main entry must load without it, so no module
// the main entry reaches may import it (only redis-streams-rpc/otel does).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Every module specifier a source file imports or re-exports (type-only imports excluded: they vanish). */
function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?from\s+'([^']+)'/gms)) {
    if (m[2] === undefined && m[3] !== undefined) specs.push(m[3]);
  }
  for (const m of source.matchAll(/^\s*import\s+'([^']+)'/gm)) if (m[1] !== undefined) specs.push(m[1]);
  for (const m of source.matchAll(/import\(\s*'([^']+)'\s*\)/g)) if (m[1] !== undefined) specs.push(m[1]);
  return specs;
}

/** The bare (package) imports reachable from `entry` through relative imports. */
function packagesReachedFrom(entry: string): Map<string, string> {
  const seen = new Set<string>();
  const packages = new Map<string, string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else packages.set(spec, path.relative(root, file));
    }
  };
  visit(path.join(root, entry));
  return packages;
}

describe('optional OpenTelemetry dependency', () => {
  it('the main entry reaches no @opentelemetry import', () => {
    const reached = packagesReachedFrom('src/index.ts');
    expect(reached.size, 'the walk found the runtime imports').to.be.greaterThan(2);
    expect([...reached.keys()]).to.include('ioredis');
    const otel = [...reached].filter(([spec]) => spec.startsWith('@opentelemetry/'));
    expect(otel, 'imported from the main entry').to.deep.equal([]);
  });

  it('the otel entry imports @opentelemetry/api, declared as an optional peer dependency', () => {
    expect([...packagesReachedFrom('src/otel.ts').keys()]).to.include('@opentelemetry/api');
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    expect(pkg.peerDependencies?.['@opentelemetry/api']).to.be.a('string');
    expect(pkg.peerDependenciesMeta?.['@opentelemetry/api']).to.deep.equal({ optional: true });
    expect(pkg.dependencies?.['@opentelemetry/api']).to.equal(undefined);
    expect(Object.keys(pkg.exports ?? {})).to.include('./otel');
  });
});
