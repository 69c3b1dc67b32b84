// Throwaway TLS material for the tests: a CA and a server certificate made with the `openssl`
// command line in a temp dir, plus a second CA that did not sign anything (the "wrong CA").
import { execFileSync } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Host names and addresses the server certificate is valid for. */
export const TLS_SERVER_NAMES = { dns: 'localhost', ip: '127.0.0.1' } as const;

/** Files and PEM texts of one test PKI. */
export interface TestCertificates {
  /** Directory holding every file; removed by {@link TestCertificates.cleanup}. */
  readonly dir: string;
  /** CA certificate file that signed the server certificate. */
  readonly caFile: string;
  /** Its PEM text, as a client passes it in `tls.ca`. */
  readonly ca: string;
  /** PEM of a CA that signed nothing: a client trusting only it must refuse the server. */
  readonly otherCa: string;
  /** Server certificate file (subjectAltName DNS:localhost, IP:127.0.0.1). */
  readonly certFile: string;
  /** Server private key file. */
  readonly keyFile: string;
  /** Removes {@link TestCertificates.dir}. Idempotent. */
  cleanup(): void;
}

/**
 * Path of the `openssl` binary (PATH, then /usr/bin).
 * @throws Error saying what to install when there is none.
 */
export function findOpenssl(): string {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), '/usr/bin', '/usr/local/bin'];
  for (const dir of dirs) {
    const candidate = path.join(dir, 'openssl');
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error('openssl not found on PATH: the TLS tests need it to make their certificates. Install it (Debian/Ubuntu: sudo apt-get install openssl).');
}

/**
 * Creates a CA, a server certificate signed by it for localhost / 127.0.0.1 (valid 2 days), and an
 * unrelated second CA, in a fresh temp dir.
 * @throws Error naming the openssl step that failed, with its output.
 */
export function createTestCertificates(): TestCertificates {
  const openssl = findOpenssl();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'redis-streams-rpc-tls-'));
  const file = (name: string): string => path.join(dir, name);
  const run = (args: string[]): void => {
    try {
      execFileSync(openssl, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(err)}`, { cause: err });
    }
  };
  const rsa = ['-newkey', 'rsa:2048', '-nodes'];
  run(['req', '-x509', ...rsa, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '2', '-subj', '/CN=redis-streams-rpc test CA']);
  run(['req', '-x509', ...rsa, '-keyout', file('other-ca.key'), '-out', file('other-ca.crt'), '-days', '2', '-subj', '/CN=redis-streams-rpc other CA']);
  run(['req', ...rsa, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', `/CN=${TLS_SERVER_NAMES.dns}`]);
  writeFileSync(file('server.ext'), `subjectAltName=DNS:${TLS_SERVER_NAMES.dns},IP:${TLS_SERVER_NAMES.ip}\n`);
  run(['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('server.crt'), '-days', '2', '-extfile', file('server.ext')]);
  return {
    dir,
    caFile: file('ca.crt'),
    ca: readFileSync(file('ca.crt'), 'utf8'),
    otherCa: readFileSync(file('other-ca.crt'), 'utf8'),
    certFile: file('server.crt'),
    keyFile: file('server.key'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
