// The extension in a real browser (Debian's Chromium, headless, the unpacked test build):
// persona shoppers browse and buy on two fixture shops, then open the third, which they
// never used; the panel must appear with items that match the persona, ranked on the device
// exactly as the service's content model ranks them, and nothing about them may leave the
// browser. Figures go to extension/test/out/report.json and screenshots beside it.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { browser, ROOT, setup } from './lib/harness.mjs';

const OUT = path.join(ROOT, 'extension/test/out');
const TARGET = 'fashion-shop-3';
const SHOPPERS = Number(process.env.WARMSTART_EXT_SHOPPERS || 6);
let bed;
let b;
const report = { shoppers: [], privacy: {}, timings: {} };

before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  bed = await setup();
  b = await browser(bed.dir);
});

after(async () => {
  fs.writeFileSync(path.join(OUT, 'report.json'), JSON.stringify(report, null, 2));
  await b?.context.close();
  bed?.close();
});

/** Calls a service-worker handler directly (as the popup would through messaging). */
const sw = (type, extra = {}) =>
  b.worker.evaluate(async ([t, e]) => self.warmstart.handlers[t](e, { url: self.location.href }), [type, extra]);
const counts = () => b.worker.evaluate(async () => ({ events: await self.warmstart.db.count('events'), products: await self.warmstart.db.count('products'), catalogs: await self.warmstart.db.count('catalogs') }));

async function waitEvents(n, what) {
  const started = Date.now();
  while (Date.now() - started < 10_000) {
    if ((await counts()).events >= n) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${n} events (${what}); have ${(await counts()).events}`);
}

async function popup(origin) {
  const page = await b.context.newPage();
  await page.goto(`chrome-extension://${b.id}/popup.html${origin ? `?origin=${encodeURIComponent(origin)}` : ''}`);
  await page.waitForSelector('#shops');
  return page;
}

/** Replays a shopper's history in the browser: purchases through cart and checkout, carts,
 * wish-list adds and views, shop by shop. */
async function replay(page, shopper) {
  const bySite = new Map();
  for (const h of shopper.history) (bySite.get(h.site) || bySite.set(h.site, []).get(h.site)).push(h);
  for (const [site, items] of bySite) {
    const of = (k) => items.filter((h) => h.kind === k);
    const visit = async (id) => {
      const before = (await counts()).events;
      await page.goto(bed.shopUrl(site, `/products/${id}`));
      await waitEvents(before + 1, `view of ${id}`);
    };
    const press = async (selector, url) => {
      const before = (await counts()).events;
      await Promise.all([page.waitForURL(url), page.click(selector)]);
      return before;
    };
    const buys = of('purchase');
    for (const h of buys) {
      await visit(h.id);
      await waitEvents((await press('#add-to-cart', /\/cart$/)) + 1, `cart of ${h.id}`);
    }
    if (buys.length) {
      const before = await press('#place-order', /\/order\/\d+$/);
      await waitEvents(before + buys.length, 'order');
    }
    for (const h of of('cart')) {
      await visit(h.id);
      await waitEvents((await press('#add-to-cart', /\/cart$/)) + 1, `cart of ${h.id}`);
    }
    for (const h of of('wishlist')) {
      await visit(h.id);
      await waitEvents((await press('#add-to-wishlist', /\/wishlist\/add$/)) + 1, `wish of ${h.id}`);
    }
    for (const h of of('view')) await visit(h.id);
  }
}

async function panelItems(page) {
  await page.waitForSelector('warmstart-panel li', { timeout: 15_000 });
  const ids = await page.$$eval('warmstart-panel li', (lis) => lis.map((li) => li.dataset.id));
  const host = await page.$eval('warmstart-panel', (h) => ({ ...h.dataset }));
  return { ids, shownMs: Number(host.shownMs), rankMs: Number(host.rankMs), mode: host.mode };
}

const WEIGHT = { view: 0.2, wishlist: 0.4, cart: 0.6, purchase: 1.0 };

async function serverTop(shopper, k = 10) {
  const r = await fetch(`${bed.service}/v1/recommend`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ site: TARGET, model: 'content', k, exact: true, history: shopper.history.map(({ site, id, kind }) => ({ site, id, kind })) }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).items.map((i) => i.id);
}

const precision = (ids, relevant) => ids.filter((i) => relevant.has(i)).length / 10;

test('capture only on allowed shops, then panels that match the personas, ranked on the device as on the server', async () => {
  const origins = [1, 2, 3].map((n) => new URL(bed.shopUrl(`fashion-shop-${n}`)).origin);
  const page = await b.context.newPage();
  // point the extension at the (logging) service
  const p = await popup();
  await p.fill('#service', bed.proxy.url);
  await p.press('#service', 'Enter');
  await p.waitForFunction(() => document.querySelector('#service').value.startsWith('http://127.0.0.1'));
  await p.close();

  // a shop not allowed: nothing is captured, nothing is sent
  bed.proxy.phase = 'not-allowed';
  await page.goto(bed.shopUrl('fashion-shop-1', `/products/${bed.shoppers.shoppers.find((s) => s.history.some((h) => h.site === 'fashion-shop-1')).history.find((h) => h.site === 'fashion-shop-1').id}`));
  await page.waitForTimeout(500);
  assert.equal((await counts()).events, 0, 'nothing captured on a shop the user did not allow');
  assert.equal(bed.proxy.requests.filter((r) => r.phase === 'not-allowed').length, 0);

  // allow the three shops from the popup
  for (const origin of origins) {
    const pop = await popup(origin);
    await pop.click('#allow');
    await pop.waitForSelector(`tr[data-origin="${origin}"]`);
    await pop.close();
  }

  const shoppers = bed.shoppers.shoppers.filter((s) => s.target === TARGET).slice(0, SHOPPERS);
  assert.ok(shoppers.length >= 3, `${shoppers.length} shoppers target ${TARGET}`);
  for (const [n, shopper] of shoppers.entries()) {
    await sw('eraseAll');
    await b.context.clearCookies(); // a fresh shopper: empty carts
    assert.deepEqual(await counts(), { events: 0, products: 0, catalogs: 0 }, 'delete leaves IndexedDB empty');
    bed.proxy.phase = `browse-${n}`;
    await replay(page, shopper);
    // first visit of the new shop: its catalog is downloaded; then it is cached
    bed.proxy.phase = `target-${n}`;
    await page.goto(bed.shopUrl(TARGET, '/'));
    const first = await panelItems(page);
    await page.reload();
    const cached = await panelItems(page);
    assert.deepEqual(cached.ids, first.ids, 'the same list from the cache');
    const server = await serverTop(shopper);
    const relevant = new Set(shopper.relevant);
    const overlap = first.ids.filter((i) => server.includes(i)).length;
    const summary = await sw('summary');
    const download = (await b.worker.evaluate(async (site) => (await self.warmstart.db.getCatalog(site)), TARGET));
    report.shoppers.push({
      persona: shopper.persona,
      history: shopper.history.length,
      relevant_in_shop: relevant.size,
      device_top10: first.ids,
      server_top10: server,
      same_order: JSON.stringify(first.ids) === JSON.stringify(server),
      overlap,
      precision_device: precision(first.ids, relevant),
      precision_server: precision(server, relevant),
      shown_ms_first_visit: first.shownMs,
      shown_ms_cached: cached.shownMs,
      rank_ms_cached: cached.rankMs,
      download_bytes: download.bytes,
      download_ms: Math.round(download.ms),
      events: Object.values(summary.shops).reduce((a, s) => a + s.events, 0),
    });
    assert.equal(first.ids.length, 10);
    assert.ok(overlap >= 9, `device and server top-10 share ${overlap} items (f16 download): ${first.ids} vs ${server}`);
    if (n === 0) {
      await page.screenshot({ path: path.join(OUT, 'panel.png') });
      // requests while on the new shop name only that shop
      const onTarget = bed.proxy.requests.filter((r) => r.phase === `target-${n}`);
      assert.ok(onTarget.length >= 2, 'the new shop catalog was downloaded');
      for (const r of onTarget) assert.match(r.url, new RegExp(`^/v1/sites/(${TARGET}/(vectors\\?dtype=f16|catalog))?$`), r.url);
    }
  }
  const mean = (k) => report.shoppers.reduce((a, s) => a + s[k], 0) / report.shoppers.length;
  report.precision_at_10 = { device: mean('precision_device'), server: mean('precision_server') };
  const sorted = report.shoppers.map((s) => s.shown_ms_cached).sort((a, c) => a - c);
  report.timings.shown_ms_cached_median = sorted[Math.floor(sorted.length / 2)];
  report.timings.shown_ms_first_median = report.shoppers.map((s) => s.shown_ms_first_visit).sort((a, c) => a - c)[Math.floor(sorted.length / 2)];
  assert.ok(report.precision_at_10.device === report.precision_at_10.server || Math.abs(report.precision_at_10.device - report.precision_at_10.server) <= 0.05, JSON.stringify(report.precision_at_10));
  assert.ok(report.timings.shown_ms_cached_median <= 300, `panel shown ${report.timings.shown_ms_cached_median} ms after DOMContentLoaded (cached)`);
});
