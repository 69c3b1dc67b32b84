// `redis-streams-rpc dashboard` in headless Chromium (Debian's /usr/bin/chromium, driven with
// puppeteer-core): the page loads, shows a live pool (consumers, calls/s), and its redrive button
// puts a request dead-lettered for real back, so its waiting caller is answered. The dashboard
// runs as a child process (node --import tsx src/cli/main.ts dashboard --port 0 --json).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import puppeteer, { type Browser } from 'puppeteer-core';
import { deleteKeys, redisUrl, uniqueName, waitFor } from '../support/env.js';
import { Pool } from './fixtures/inspect-pool.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const MAIN = path.join(repoRoot, 'src', 'cli', 'main.ts');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

describe('redis-streams-rpc dashboard (headless Chromium)', function () {
  this.timeout(120_000);
  let url = '';
  let name = '';
  let raw: Redis;
  let pool: Pool;
  let child: ChildProcess | undefined;
  let browser: Browser | undefined;
  let traffic: NodeJS.Timeout | undefined;

  before(function () {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (or set CHROMIUM_BIN)`);
  });

  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('dash');
    raw = new Redis(url);
    pool = new Pool(url, name);
  });

  afterEach(async () => {
    clearInterval(traffic);
    await browser?.close();
    if (child !== undefined && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child!.once('exit', resolve));
    }
    await pool.destroy();
    await raw.quit();
    await deleteKeys(url, `*${name}*`);
  });

  async function startDashboard(): Promise<string> {
    child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'dashboard', '--url', url, '--stream', name, '--port', '0', '--json'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    await waitFor(() => stdout.includes('\n') || child!.exitCode !== null, { timeoutMs: 30_000, message: 'the dashboard did not start' });
    if (!stdout.includes('\n')) throw new Error(`dashboard exited: ${stderr}`);
    return (JSON.parse(stdout.split('\n')[0]!) as { url: string }).url;
  }

  it('shows a live pool and redrives a dead letter from the page, answering the waiting caller', async () => {
    await pool.startCaller(120_000);
    const { call } = await pool.deadLetteredCall(raw, 'page-redrive');
    const worker = await pool.worker();
    const api = pool.caller.getAPI();
    expect(await api.math.add(1, 1)).to.equal(2);
    traffic = setInterval(() => void api.math.add(1, 2).catch(() => undefined), 100);
    const address = await startDashboard();

    // The API refuses a redrive without the page's token (what a cross-site request would send).
    const forged = await fetch(`${address}api/redrive`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids: 'all' }) });
    expect(forged.status).to.equal(403);
    // A page on another name resolving to 127.0.0.1 (DNS rebinding) is refused (fetch cannot set Host).
    const misdirected = await new Promise<number | undefined>((resolve, reject) =>
      request(address, { headers: { host: 'evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      })
        .on('error', reject)
        .end(),
    );
    expect(misdirected).to.equal(421);

    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    await page.goto(address, { waitUntil: 'domcontentloaded' });
    expect(await page.$eval('#stream', (el) => el.textContent)).to.equal(name);
    await page.waitForSelector(`#consumers tr[data-consumer="${worker.getConsumerName()}"]`, { timeout: 30_000 });
    await page.waitForFunction("Number(document.getElementById('calls-per-sec').textContent) > 0", { timeout: 30_000 });
    const state = await page.$eval(`#consumers tr[data-consumer="${worker.getConsumerName()}"]`, (tr) => tr.textContent ?? '');
    expect(state).to.include('alive');
    expect(await page.$eval('#dead-count', (el) => el.textContent)).to.equal('1');

    const [letter] = await raw.xrange(`{${name}}:dead`, '-', '+');
    const button = await page.waitForSelector(`#dead-letters tr[data-id="${letter![0]}"] button.redrive`, { timeout: 30_000 });
    await button!.click();
    expect(await call).to.equal('page-redrive');
    await page.waitForFunction("/Redrove 1 dead letter/.test(document.getElementById('message').textContent)", { timeout: 30_000 });
    await page.waitForFunction("document.getElementById('dead-count').textContent === '0'", { timeout: 30_000 });
    expect(await raw.xlen(`{${name}}:dead`)).to.equal(0);
    expect(pageErrors).to.deep.equal([]);
  });
});
