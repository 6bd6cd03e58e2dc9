// Test bed of the extension's browser tests: a store built from a slice of the shared
// fashion-products data (three shops, real MiniLM text vectors, a trained content model,
// persona shoppers), `warmstart-shops` serving the three fixture shops, `warmstart serve`
// behind a logging proxy (every request the extension sends to the service is recorded with
// its headers and body), and Debian's Chromium with the unpacked test build loaded.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(import.meta.dirname, '../../..');
const BIN = process.env.WARMSTART_BIN_DIR || path.join(ROOT, 'target/debug');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function warmstart(store, args) {
  return execFileSync(path.join(BIN, 'warmstart'), ['--store', store, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

async function startProcess(bin, args, dir, name) {
  const ready = path.join(dir, `${name}.ready`);
  const log = fs.openSync(path.join(dir, `${name}.log`), 'w');
  const child = spawn(bin, [...args, '--ready-file', ready], { stdio: ['ignore', log, log] });
  const started = Date.now();
  while (Date.now() - started < 120_000) {
    if (fs.existsSync(ready) && fs.readFileSync(ready, 'utf8').trim()) {
      return { child, addr: fs.readFileSync(ready, 'utf8').trim() };
    }
    if (child.exitCode !== null) throw new Error(`${name} exited: ${fs.readFileSync(path.join(dir, `${name}.log`), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not start`);
}

/** A proxy in front of the service that records every request (method, URL, headers, body,
 * and the test's phase at the time). */
function loggingProxy(target) {
  const [host, port] = target.split(':');
  const proxy = { requests: [], phase: 'setup', server: null, url: '' };
  proxy.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      proxy.requests.push({ method: req.method, url: req.url, headers: { ...req.headers }, body: body.toString('utf8'), phase: proxy.phase });
      const up = http.request({ host, port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      up.end(body);
    });
  });
  return new Promise((resolve) =>
    proxy.server.listen(0, '127.0.0.1', () => {
      proxy.url = `http://127.0.0.1:${proxy.server.address().port}`;
      resolve(proxy);
    }),
  );
}

export async function setup({ products = 1500, perPersona = 3 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warmstart-ext-'));
  const store = path.join(dir, 'store.sqlite');
  const fx = path.join(dir, 'fashion');
  execFileSync('python3', [path.join(ROOT, 'scripts/fashion_subset.py'), String(products), fx], { stdio: 'inherit' });
  warmstart(store, ['ingest', 'fashion-products', '--shops', '3', fx]);
  warmstart(store, ['embed', '--model', 'minilm', '--dataset', 'fashion-products']);
  warmstart(store, ['train', 'content', '--dataset', 'fashion-products', '--vectors', 'minilm']);
  // other simulated shoppers (another seed) give a collaborative model to run on the device
  warmstart(store, ['personas', '--per-persona', '25', '--seed', '7', '--save-only']);
  warmstart(store, ['train', 'itemknn', '--dataset', 'fashion-products']);
  const shoppersFile = path.join(dir, 'shoppers.json');
  warmstart(store, ['personas', '--text', 'minilm', '--image', 'none', '--per-persona', String(perPersona), '--export-shoppers', shoppersFile]);
  const shoppers = JSON.parse(fs.readFileSync(shoppersFile, 'utf8'));
  const shops = await startProcess(path.join(BIN, 'warmstart-shops'), ['--store', store, '--addr', '127.0.0.1:0', '--log', path.join(dir, 'shops.jsonl')], dir, 'shops');
  const shopPort = Number(shops.addr.split(':')[1]);
  const serve = await startProcess(
    path.join(BIN, 'warmstart'),
    ['--store', store, 'serve', '--addr', '127.0.0.1:0', '--product-url', `*=http://{site}.localhost:${shopPort}/products/{id}`, '--image-url', `*=http://{site}.localhost:${shopPort}/images/{id}.jpg`],
    dir,
    'serve',
  );
  const proxy = await loggingProxy(serve.addr);
  return {
    dir,
    store,
    shoppers,
    shopPort,
    service: `http://${serve.addr}`,
    proxy,
    shopUrl: (site, p = '/') => `http://${site}.localhost:${shopPort}${p}`,
    close() {
      proxy.server.close();
      for (const c of [shops.child, serve.child]) c.kill('SIGKILL');
    },
  };
}

/** Chromium with the test build of the extension; returns the context, its worker and id. */
export async function browser(dir) {
  const ext = path.join(ROOT, 'extension/dist-test');
  if (!fs.existsSync(path.join(ext, 'warmstart_device.wasm'))) throw new Error('run scripts/build_extension.sh --test first');
  const context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1200, height: 800 },
    args: [
      `--disable-extensions-except=${ext}`,
      `--load-extension=${ext}`,
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  let [worker] = context.serviceWorkers();
  if (!worker) worker = await context.waitForEvent('serviceworker');
  const id = new URL(worker.url()).host;
  return { context, worker, id };
}
