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
  return { ids, shownMs: Number(host.shownMs), rankMs: Number(host.rankMs), mode: host.mode, model: host.model };
}

const WEIGHT = { view: 0.2, wishlist: 0.4, cart: 0.6, purchase: 1.0 };

async function serverTop(shopper, model = 'content', k = 10) {
  const r = await fetch(`${bed.service}/v1/recommend`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ site: TARGET, model, k, exact: true, history: shopper.history.map(({ site, id, kind }) => ({ site, id, kind })) }),
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
    await b.worker.evaluate(() => self.warmstart.idle());
    // first visit of the new shop: its catalog is downloaded; then it is cached
    bed.proxy.phase = `target-${n}`;
    await page.goto(bed.shopUrl(TARGET, '/'));
    const first = await panelItems(page);
    await page.reload();
    const cached = await panelItems(page);
    assert.deepEqual(cached.ids, first.ids, 'the same list from the cache');
    const server = await serverTop(shopper, first.model);
    // the content model on the device as well, against the server's
    await sw('set', { values: { model: 'content' } });
    await page.reload();
    const content = await panelItems(page);
    await sw('set', { values: { model: 'auto' } });
    const serverContent = await serverTop(shopper, 'content');
    const relevant = new Set(shopper.relevant);
    const overlap = first.ids.filter((i) => server.includes(i)).length;
    const summary = await sw('summary');
    const download = await b.worker.evaluate(async (site) => self.warmstart.db.getCatalog(site), TARGET);
    const lists = await b.worker.evaluate(async (key) => self.warmstart.db.getCatalog(key), `${TARGET}#neighbours:${first.model}`);
    report.shoppers.push({
      persona: shopper.persona,
      history: shopper.history.length,
      relevant_in_shop: relevant.size,
      model: first.model,
      device_top10: first.ids,
      server_top10: server,
      same_order: JSON.stringify(first.ids) === JSON.stringify(server),
      overlap,
      content_same_order: JSON.stringify(content.ids) === JSON.stringify(serverContent),
      content_overlap: content.ids.filter((i) => serverContent.includes(i)).length,
      precision_device: precision(first.ids, relevant),
      precision_server: precision(server, relevant),
      precision_device_content: precision(content.ids, relevant),
      precision_server_content: precision(serverContent, relevant),
      shown_ms_first_visit: first.shownMs,
      shown_ms_cached: cached.shownMs,
      rank_ms_cached: cached.rankMs,
      download_bytes: download.bytes + (lists?.bytes || 0),
      download_ms: Math.round(download.ms + (lists?.ms || 0)),
      events: Object.values(summary.shops).reduce((a, s) => a + s.events, 0),
    });
    assert.equal(content.model, 'content');
    assert.ok(content.ids.filter((i) => serverContent.includes(i)).length >= 9, `content on the device and the server: ${content.ids} vs ${serverContent}`);
    assert.equal(first.ids.length, 10);
    assert.ok(overlap >= 9, `device and server top-10 share ${overlap} items (f16 download): ${first.ids} vs ${server}`);
    if (n === 0) {
      await page.screenshot({ path: path.join(OUT, 'panel.png') });
      await page.locator('warmstart-panel .panel').screenshot({ path: path.join(OUT, 'panel-small.png') });
      // requests while on the new shop name only that shop
      const onTarget = bed.proxy.requests.filter((r) => r.phase === `target-${n}`);
      assert.ok(onTarget.length >= 2, 'the new shop catalog was downloaded');
      for (const r of onTarget) assert.match(r.url, new RegExp(`^/v1/sites/(${TARGET}/(vectors\\?dtype=f16|catalog|neighbours\\?model=\\w+))?$`), r.url);
    }
  }
  const mean = (k) => report.shoppers.reduce((a, s) => a + s[k], 0) / report.shoppers.length;
  report.precision_at_10 = {
    device: mean('precision_device'),
    server: mean('precision_server'),
    device_content: mean('precision_device_content'),
    server_content: mean('precision_server_content'),
    models: [...new Set(report.shoppers.map((s) => s.model))],
  };
  const sorted = report.shoppers.map((s) => s.shown_ms_cached).sort((a, c) => a - c);
  report.timings.shown_ms_cached_median = sorted[Math.floor(sorted.length / 2)];
  report.timings.shown_ms_first_median = report.shoppers.map((s) => s.shown_ms_first_visit).sort((a, c) => a - c)[Math.floor(sorted.length / 2)];
  assert.ok(report.precision_at_10.device === report.precision_at_10.server || Math.abs(report.precision_at_10.device - report.precision_at_10.server) <= 0.05, JSON.stringify(report.precision_at_10));
  assert.ok(report.timings.shown_ms_cached_median <= 300, `panel shown ${report.timings.shown_ms_cached_median} ms after DOMContentLoaded (cached)`);
});

test('pause stops capture; one shop or everything deleted; export and import round-trip', async () => {
  await sw('eraseAll');
  await b.context.clearCookies();
  const shopper = bed.shoppers.shoppers.find((s) => s.target === TARGET);
  const page = await b.context.newPage();
  bed.proxy.phase = 'controls';
  await replay(page, shopper);
  const before = await counts();
  assert.ok(before.events > 0);

  const pop = await popup(bed.shopUrl('fashion-shop-1'));
  await pop.check('#paused');
  await pop.waitForFunction(() => document.querySelector('#here-status').textContent.includes('paused'));
  const some = shopper.history.find((h) => h.site === 'fashion-shop-1') || shopper.history[0];
  await page.goto(bed.shopUrl(some.site, `/products/${some.id}`));
  await page.click('#add-to-cart');
  await page.waitForTimeout(500);
  assert.equal((await counts()).events, before.events, 'nothing captured while paused');
  await pop.uncheck('#paused');

  // export (a real download from the popup), delete everything, import it back
  await pop.reload();
  const [download] = await Promise.all([pop.waitForEvent('download'), pop.click('#export')]);
  const file = path.join(OUT, 'export.json');
  await download.saveAs(file);
  const exported = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(exported.events.length, before.events);
  assert.equal(exported.products.length, before.products);
  await pop.click('#erase');
  await pop.waitForFunction(() => document.querySelector('#message').textContent.includes('deleted'));
  assert.deepEqual(await counts(), { events: 0, products: 0, catalogs: 0 }, 'delete leaves IndexedDB empty');
  await pop.setInputFiles('#import', file);
  await pop.waitForFunction(() => document.querySelector('#message').textContent.includes('Imported'));
  assert.deepEqual(await sw('export'), exported, 'import restores exactly what was exported');

  // one shop deleted: its rows go, the others stay, and it is no longer read
  const origin1 = new URL(bed.shopUrl('fashion-shop-1')).origin;
  const events1 = exported.events.filter((e) => e.origin === origin1).length;
  await pop.reload();
  await pop.click(`tr[data-origin="${origin1}"] button.forget`);
  await pop.waitForFunction((o) => !document.querySelector(`tr[data-origin="${o}"]`), origin1);
  const left = await sw('export');
  assert.equal(left.events.filter((e) => e.origin === origin1).length, 0);
  assert.equal(left.events.length, exported.events.length - events1);
  await page.goto(bed.shopUrl('fashion-shop-1', `/products/${some.id}`));
  await page.waitForTimeout(400);
  assert.equal((await sw('export')).events.length, left.events.length, 'a deleted shop is not read any more');
  await pop.screenshot({ path: path.join(OUT, 'popup.png') });
  // allowed again for the next test
  await pop.goto(`chrome-extension://${b.id}/popup.html?origin=${encodeURIComponent(origin1)}`);
  await pop.click('#allow');
  await pop.waitForSelector(`tr[data-origin="${origin1}"]`);
  await pop.close();
});

test('server mode sends only a profile vector; click reports only the list id, positions and a rotating session', async () => {
  await sw('eraseAll');
  await b.context.clearCookies();
  const shopper = bed.shoppers.shoppers.filter((s) => s.target === TARGET)[1];
  const page = await b.context.newPage();
  bed.proxy.phase = 'server-browse';
  await replay(page, shopper);
  const pop = await popup();
  await pop.check('#serverMode');
  await pop.waitForFunction(() => !document.querySelector('#reportClicks').disabled);
  await pop.check('#reportClicks');
  await pop.waitForFunction(() => document.querySelector('#reportClicks').checked);
  bed.proxy.phase = 'server-mode';
  await page.goto(bed.shopUrl(TARGET, '/'));
  const panel = await panelItems(page);
  assert.equal(panel.mode, 'server');
  assert.deepEqual(panel.ids, await serverTop(shopper), 'the service ranks the profile as it ranks the history');
  await Promise.all([page.waitForURL(/\/products\//), page.click('warmstart-panel li:nth-child(2) a')]);
  // the product page is recorded before its panel is decided: now history here, so no second list
  await page.waitForTimeout(1500);
  const sent = bed.proxy.requests.filter((r) => r.phase === 'server-mode' && r.method === 'POST');
  const rec = sent.filter((r) => r.url === '/v1/recommend');
  assert.equal(rec.length, 1, 'one list asked for: the product page opened from it is history on this shop');
  const body = JSON.parse(rec[0].body);
  assert.deepEqual(Object.keys(body).sort(), ['k', 'model', 'profile', 'session', 'site']);
  assert.equal(body.site, TARGET);
  assert.ok(body.profile.length === 384 && body.profile.every((x) => typeof x === 'number'));
  const events = sent.filter((r) => r.url === '/v1/events').flatMap((r) => JSON.parse(r.body).events);
  assert.deepEqual(events.map((e) => e.type), ['impression', 'click']);
  for (const e of events) {
    assert.equal(e.session, body.session);
    for (const k of Object.keys(e)) assert.ok(['type', 'recommendation_id', 'items', 'id', 'position', 'session', 'key'].includes(k), k);
  }
  assert.equal(events[1].position, 1);
  assert.equal(events[1].id, panel.ids[1], 'the clicked item is one the service itself recommended');
  await pop.uncheck('#serverMode');
  await pop.close();
});

test('no request carries another shop, a product, a title, a history, a time or a stable id', async () => {
  const sent = bed.proxy.requests.filter((r) => r.phase !== 'setup');
  report.privacy.requests = sent.length;
  report.privacy.by_path = {};
  for (const r of sent) {
    const key = `${r.method} ${r.url.replace(/fashion-shop-\d/, '{site}').replace(/\?.*/, '')}`;
    report.privacy.by_path[key] = (report.privacy.by_path[key] || 0) + 1;
  }
  // every history product id and title of every shopper that was replayed
  const catalogs = {};
  for (const n of [1, 2, 3]) {
    const site = `fashion-shop-${n}`;
    catalogs[site] = new Map((await (await fetch(`${bed.service}/v1/sites/${site}/catalog`)).json()).products.map((p) => [p.id, p.title]));
  }
  const history = bed.shoppers.shoppers.flatMap((s) => s.history);
  const ids = new Set(history.map((h) => h.id));
  const titles = new Set(history.map((h) => catalogs[h.site].get(h.id)).filter(Boolean));
  const strings = (v, out = []) => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
    else if (v && typeof v === 'object') Object.entries(v).forEach(([k, x]) => (out.push(k), strings(x, out)));
    return out;
  };
  for (const r of sent) {
    for (const h of ['cookie', 'referer', 'authorization']) assert.ok(!(h in r.headers), `${h} sent with ${r.method} ${r.url}`);
    assert.match(`${r.method} ${r.url}`, /^(GET \/v1\/sites(\/fashion-shop-\d\/(vectors\?dtype=f(16|32)|catalog|neighbours\?model=\w+))?|POST \/v1\/(recommend|events))$/);
    assert.ok(!/localhost|http:/.test(r.url + r.body), `a URL in ${r.url}`);
    const body = r.body ? JSON.parse(r.body) : {};
    const recommended = new Set();
    if (r.url === '/v1/events') {
      for (const e of body.events) for (const it of e.items || []) recommended.add(it.id);
      for (const e of body.events) if (e.id) recommended.add(e.id);
    }
    for (const s of strings(body)) {
      assert.ok(!titles.has(s), `a title in ${r.url}: ${s}`);
      assert.ok(!ids.has(s) || recommended.has(s), `a history product id in ${r.url}: ${s}`);
      assert.ok(!/^\d{10,13}$/.test(s), `a timestamp in ${r.url}`);
    }
    const numbers = (v) => (typeof v === 'number' ? [v] : v && typeof v === 'object' ? Object.values(v).flatMap(numbers) : []);
    for (const x of numbers(body)) assert.ok(!(Number.isInteger(x) && x > 1e9), `a timestamp-like number in ${r.url}: ${x}`);
    if (r.url === '/v1/events') for (const e of body.events) assert.match(e.session, /^ext-[0-9a-f]{24}$/);
  }
  // the history's shops' catalogs are fetched while the shopper is on them, the new shop's on it
  for (const r of sent.filter((x) => x.phase.startsWith('target-'))) assert.ok(r.url === '/v1/sites' || r.url.includes(TARGET), r.url);
  // shops' own logs: the extension never called a shop itself (only the page's own loads)
  const shopLog = fs.readFileSync(path.join(bed.dir, 'shops.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  for (const l of shopLog) assert.ok(!l.referer.startsWith('chrome-extension://'), `the extension requested ${l.path}`);
  report.privacy.shop_requests = shopLog.length;
});
