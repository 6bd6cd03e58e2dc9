// The service worker: captures what the content script reports on allowed shops into this
// device's IndexedDB, keeps shops' public catalogs (vectors + metadata) cached by ETag, and
// ranks a shop the user never used with the device engine. Nothing about the user is sent
// anywhere unless server mode is on (then only a profile vector) or click reporting is on
// (then only the server's recommendation id, positions and a rotating session id).

import * as db from './db.js';
import { engine } from './wasm.js';

/** Weights of what a shopper did, as warmstart's offline evaluation weighs them. */
export const WEIGHTS = { view: 0.2, wishlist: 0.4, cart: 0.6, purchase: 1.0 };

const DEFAULTS = { service: 'http://127.0.0.1:8080', shops: {}, paused: false, serverMode: false, reportClicks: false, k: 10, dtype: 'f16', model: 'auto', session: null };

async function settings() {
  const s = await chrome.storage.local.get(Object.keys(DEFAULTS));
  return { ...DEFAULTS, ...s };
}

function matchPattern(origin) {
  const u = new URL(origin);
  return `${u.protocol}//${u.hostname}/*`;
}

/** Registers the content script for the allowed shops (and only those). */
async function syncContentScripts() {
  const { shops } = await settings();
  const matches = Object.entries(shops).filter(([, s]) => s.allowed).map(([o]) => matchPattern(o));
  const existing = await chrome.scripting.getRegisteredContentScripts({ ids: ['capture'] });
  if (existing.length) await chrome.scripting.unregisterContentScripts({ ids: ['capture'] });
  if (matches.length) {
    await chrome.scripting.registerContentScripts([
      { id: 'capture', matches: [...new Set(matches)], js: ['content.js'], runAt: 'document_end', persistAcrossSessions: true },
    ]);
  }
}

/** The service's sites with their models (public), cached for a minute. */
let sitesCache = null;
async function serviceSiteInfo() {
  const { service } = await settings();
  if (sitesCache && sitesCache.service === service && Date.now() - sitesCache.at < 60_000) return sitesCache.sites;
  const r = await fetch(`${service}/v1/sites`, { credentials: 'omit', referrerPolicy: 'no-referrer', cache: 'no-store' });
  if (!r.ok) throw new Error(`service: GET /v1/sites ${r.status}`);
  const sites = await r.json();
  sitesCache = { service, sites, at: Date.now() };
  return sites;
}
const serviceSites = async () => (await serviceSiteInfo()).map((s) => s.site);

/** Models a device can run from public downloads: neighbour lists, or the content space. */
const NEIGHBOUR_MODELS = ['itemknn', 'rp3beta'];

/** The model to rank a site with on this device: the site's default when the device can run
 * it, else the one with the best hold-out NDCG@10 the device can run, else content. */
async function deviceModel(site, wanted) {
  if (wanted === 'content') return 'content';
  const info = (await serviceSiteInfo().catch(() => [])).find((s) => s.site === site);
  const runnable = (info?.models || []).filter((m) => m.model === 'content' || NEIGHBOUR_MODELS.includes(m.model));
  const pick = runnable.find((m) => m.default) || runnable.sort((a, b) => (b.ndcg_at_10 ?? -1) - (a.ndcg_at_10 ?? -1))[0];
  if (wanted === 'neighbours') return runnable.find((m) => NEIGHBOUR_MODELS.includes(m.model))?.model || 'content';
  return pick?.model || 'content';
}

/** A neighbour-list model's lists into a site (every other shop's products at once). */
async function neighbours(site, model) {
  const { service } = await settings();
  const key = `${site}#neighbours:${model}`;
  let entry = await db.getCatalog(key);
  const opts = { credentials: 'omit', referrerPolicy: 'no-referrer', cache: 'no-store', headers: entry ? { 'If-None-Match': entry.etag } : {} };
  const started = performance.now();
  const r = await fetch(`${service}/v1/sites/${encodeURIComponent(site)}/neighbours?model=${encodeURIComponent(model)}`, opts);
  if (r.status === 200) {
    const lists = await r.arrayBuffer();
    entry = { site: key, etag: r.headers.get('ETag') || '', lists, bytes: lists.byteLength, ms: performance.now() - started, at: Date.now() };
    await db.putCatalog(entry);
  } else if (r.status !== 304 && !entry) {
    throw new Error(`service: neighbours of ${site}: ${r.status}`);
  }
  if (loaded.get(key) !== entry.etag) {
    (await engine()).loadNeighbours(site, entry.lists);
    loaded.set(key, entry.etag);
  }
  return entry;
}

/** The service's site for a shop origin: the one the user chose, else the host's first label. */
async function siteOf(origin, shops) {
  if (shops[origin]?.site) return shops[origin].site;
  const label = new URL(origin).hostname.split('.')[0];
  const sites = await serviceSites().catch(() => []);
  return sites.includes(label) ? label : null;
}

/** A shop's public catalog (vectors and metadata), from the cache, revalidated by ETag. */
const loaded = new Map(); // site -> etag loaded into the engine
async function catalog(site, { revalidate = true } = {}) {
  const { service, dtype } = await settings();
  let entry = await db.getCatalog(site);
  if (!entry || revalidate) {
    const opts = { credentials: 'omit', referrerPolicy: 'no-referrer', cache: 'no-store' };
    const headers = entry ? { 'If-None-Match': entry.etag } : {};
    const started = performance.now();
    const v = await fetch(`${service}/v1/sites/${encodeURIComponent(site)}/vectors?dtype=${dtype}`, { ...opts, headers });
    if (v.status === 200) {
      const vectors = await v.arrayBuffer();
      const c = await fetch(`${service}/v1/sites/${encodeURIComponent(site)}/catalog`, opts);
      if (!c.ok) throw new Error(`service: catalog of ${site}: ${c.status}`);
      const catalogText = await c.text();
      entry = { site, etag: v.headers.get('ETag') || '', vectors, catalogText, bytes: vectors.byteLength + catalogText.length, ms: performance.now() - started, at: Date.now() };
      await db.putCatalog(entry);
    } else if (v.status === 304 && entry) {
      entry.at = Date.now();
      await db.putCatalog(entry);
    } else if (!entry) {
      throw new Error(`service: vectors of ${site}: ${v.status}`);
    }
  }
  if (entry && loaded.get(site) !== entry.etag) {
    (await engine()).loadShop(site, entry.vectors, entry.catalogText);
    loaded.set(site, entry.etag);
  }
  return entry;
}

/** Background downloads in flight (tests wait for them with `self.warmstart.idle()`). */
const pending = new Set();
function track(promise) {
  const p = promise.catch(() => {}).finally(() => pending.delete(p));
  pending.add(p);
}

function history(events) {
  // one entry per product: its strongest event
  const best = new Map();
  for (const e of events) {
    const key = `${e.site}\u0000${e.id}`;
    const w = WEIGHTS[e.kind] ?? 0.2;
    const prev = best.get(key);
    if (!prev || w > prev.weight) best.set(key, { site: e.site, id: e.id, weight: w, kind: e.kind, origin: e.origin });
  }
  return [...best.values()];
}

async function sessionId(state) {
  // anonymous and rotating: a new random id every 30 minutes
  const now = Date.now();
  if (!state.session || now > state.session.until) {
    const b = crypto.getRandomValues(new Uint8Array(12));
    state.session = { id: 'ext-' + [...b].map((x) => x.toString(16).padStart(2, '0')).join(''), until: now + 30 * 60_000 };
    await chrome.storage.local.set({ session: state.session });
  }
  return state.session.id;
}

async function panelFor(origin) {
  const s = await settings();
  const shop = s.shops[origin];
  if (!shop?.allowed) return null;
  const site = await siteOf(origin, s.shops);
  if (!site) return { reason: 'unknown-shop' };
  const events = await db.all('events');
  const here = events.filter((e) => e.origin === origin);
  const elsewhere = events.filter((e) => e.origin !== origin && e.site);
  if (here.length || !elsewhere.length) return null; // a shop the user already uses, or no history
  const cached = await db.getCatalog(site);
  const started = performance.now();
  const target = await catalog(site, { revalidate: !cached });
  if (cached && Date.now() - cached.at > 3600_000) track(catalog(site)); // revalidate in the background
  // the history's shops are loaded from the cache (fetched while the user was on them)
  const hist = history(elsewhere);
  // (only cached ones: a history shop's catalog is never fetched from another shop)
  for (const st of new Set(hist.map((h) => h.site))) {
    if (!loaded.has(st) && (await db.getCatalog(st))) await catalog(st, { revalidate: false });
  }
  const eng = await engine();
  const request = { target: site, history: hist.map(({ site, id, weight }) => ({ site, id, weight })), k: s.k };
  let model = await deviceModel(site, s.model);
  let ranked = null;
  let lists = null;
  if (NEIGHBOUR_MODELS.includes(model)) {
    lists = await neighbours(site, model).catch(() => null);
    ranked = lists && eng.rank({ ...request, model: 'neighbours' });
    if (!ranked || ranked.used === 0) model = 'content'; // none of the history is known to it
  }
  // the content ranking: the list itself, or (server mode) the profile vector it yields
  const contentRanked = model === 'content' || s.serverMode ? eng.rank(request) : null;
  if (model === 'content') ranked = contentRanked;
  const meta = new Map(JSON.parse(target.catalogText).products.map((p) => [p.id, p]));
  const products = new Map((await db.all('products')).map((p) => [`${p.site}\u0000${p.id}`, p]));
  const kinds = new Map(hist.map((h) => [`${h.site}\u0000${h.id}`, h.kind]));
  let items = ranked.items.map((it) => {
    const m = meta.get(it.id) || { id: it.id, title: it.id };
    const key = it.because && `${it.because.site}\u0000${it.because.id}`;
    const b = key && products.get(key);
    return { ...m, score: it.score, because: b ? { title: b.title, shop: new URL(b.origin).hostname, kind: kinds.get(key) } : null };
  });
  let recommendation = null;
  if (s.serverMode && contentRanked?.profile.length) {
    // only the profile vector (and the site asked about) leaves the device
    const body = { site, profile: contentRanked.profile, k: s.k, model: 'content' };
    if (s.reportClicks) body.session = await sessionId(s);
    const r = await fetch(`${s.service}/v1/recommend`, {
      method: 'POST', credentials: 'omit', referrerPolicy: 'no-referrer', cache: 'no-store',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    if (r.ok) {
      const out = await r.json();
      recommendation = out.recommendation_id;
      const reasons = new Map(items.map((i) => [i.id, i.because]));
      items = out.items.map((it) => ({ ...(meta.get(it.id) || { id: it.id, title: it.title }), score: it.score, because: reasons.get(it.id) || null }));
      if (s.reportClicks) {
        await sendEvents(s, [{ type: 'impression', recommendation_id: recommendation, items: items.map((it, position) => ({ id: it.id, position })) }]);
      }
    }
  }
  return {
    site, items, model: recommendation ? 'content' : model, ms: performance.now() - started, mode: recommendation ? 'server' : 'device', recommendation,
    download: { bytes: target.bytes + (lists?.bytes || 0), ms: target.ms + (lists?.ms || 0) },
  };
}

async function sendEvents(s, events) {
  const session = await sessionId(s);
  const body = { events: events.map((e) => ({ ...e, session, key: `${session}-${crypto.randomUUID()}` })) };
  await fetch(`${s.service}/v1/events`, {
    method: 'POST', credentials: 'omit', referrerPolicy: 'no-referrer', cache: 'no-store',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  }).catch(() => {});
}

async function onPage(msg, sender) {
  const origin = new URL(sender.url || msg.url).origin;
  const s = await settings();
  const shop = s.shops[origin];
  if (!shop?.allowed || s.paused) return { captured: 0, paused: s.paused };
  const site = await siteOf(origin, s.shops);
  const page = (await engine()).capture(msg.html, msg.url, site || new URL(origin).hostname);
  const now = Date.now();
  const products = page.products.map((p) => ({ ...p, origin, site, seen: now }));
  const kind = page.kind === 'order' ? 'purchase' : page.kind === 'product' ? 'view' : null;
  const events = kind ? products.map((p) => ({ origin, site, id: p.id, kind, at: now })) : [];
  if (events.length) await db.record(events, products);
  // this shop's public catalog, fetched while the user is on it (for finding their items
  // later), at most once an hour
  if (site && events.length) {
    const cached = await db.getCatalog(site);
    if (!cached || Date.now() - cached.at > 3600_000) track(catalog(site));
  }
  return { captured: events.length, kind, products: page.kind === 'product' ? products.map((p) => p.id) : [] };
}

async function onEvent(msg, sender) {
  const origin = new URL(sender.url).origin;
  const s = await settings();
  if (!s.shops[origin]?.allowed || s.paused || !WEIGHTS[msg.kind]) return { captured: 0 };
  const site = await siteOf(origin, s.shops);
  const now = Date.now();
  const events = (msg.ids || []).map((id) => ({ origin, site, id, kind: msg.kind, at: now }));
  if (events.length) await db.record(events, []);
  return { captured: events.length };
}

async function summary() {
  const s = await settings();
  const events = await db.all('events');
  const products = await db.all('products');
  const per = {};
  for (const [origin, shop] of Object.entries(s.shops)) per[origin] = { ...shop, events: 0, products: 0 };
  for (const e of events) (per[e.origin] ||= { events: 0, products: 0 }).events++;
  for (const p of products) (per[p.origin] ||= { events: 0, products: 0 }).products++;
  return { settings: { ...s, session: undefined }, shops: per, catalogs: await db.count('catalogs') };
}

async function allowShop(origin, site) {
  const s = await settings();
  s.shops[origin] = { ...(s.shops[origin] || {}), allowed: true, ...(site ? { site } : {}) };
  await chrome.storage.local.set({ shops: s.shops });
  await syncContentScripts();
  return summary();
}

async function forgetShop(origin) {
  const s = await settings();
  delete s.shops[origin];
  await chrome.storage.local.set({ shops: s.shops });
  await db.erase(origin);
  await syncContentScripts();
  return summary();
}

// A page's capture, by document, so that its panel is decided after the page itself is
// recorded (a first product page on a new shop is history there: no cold-start panel).
const captures = new Map();
const documentKey = (sender) => `${sender.tab?.id}:${sender.frameId}:${sender.documentId || sender.url}`;

const handlers = {
  page: (msg, sender) => {
    const key = documentKey(sender);
    const done = onPage(msg, sender);
    const settled = done.catch(() => null).finally(() => {
      if (captures.get(key) === settled) captures.delete(key);
    });
    captures.set(key, settled);
    return done;
  },
  event: onEvent,
  panel: async (msg, sender) => {
    await captures.get(documentKey(sender));
    return panelFor(new URL(sender.url).origin);
  },
  click: async (msg) => {
    const s = await settings();
    if (s.serverMode && s.reportClicks && msg.recommendation) {
      await sendEvents(s, [{ type: 'click', recommendation_id: msg.recommendation, id: msg.id, position: msg.position }]);
    }
    return {};
  },
  summary: () => summary(),
  allow: (msg) => allowShop(msg.origin, msg.site),
  forget: (msg) => forgetShop(msg.origin),
  eraseAll: async () => {
    await db.erase();
    await chrome.storage.local.remove('session');
    for (const site of loaded.keys()) (await engine()).unloadShop(site);
    loaded.clear();
    return summary();
  },
  set: async (msg) => {
    const allowedKeys = ['service', 'paused', 'serverMode', 'reportClicks', 'k', 'dtype', 'model'];
    const patch = Object.fromEntries(Object.entries(msg.values || {}).filter(([k]) => allowedKeys.includes(k)));
    await chrome.storage.local.set(patch);
    if ('service' in patch || 'dtype' in patch) {
      sitesCache = null;
      loaded.clear();
    }
    return summary();
  },
  export: async () => ({ format: 'warmstart-extension-history/1', events: await db.all('events'), products: await db.all('products') }),
  import: async (msg) => {
    if (msg.data?.format !== 'warmstart-extension-history/1') throw new Error('not a warmstart history export');
    await db.importAll(msg.data);
    return summary();
  },
  sites: () => serviceSites(),
};

// what only the extension's own pages (the popup) may ask: a shop's page never can
const PRIVILEGED = new Set(['summary', 'allow', 'forget', 'eraseAll', 'set', 'export', 'import', 'sites']);

chrome.runtime.onMessage.addListener((msg, sender, reply) => {
  const h = handlers[msg?.type];
  if (!h || sender.id !== chrome.runtime.id) return false;
  const fromExtensionPage = (sender.url || '').startsWith(chrome.runtime.getURL(''));
  if (PRIVILEGED.has(msg.type) !== fromExtensionPage) {
    reply({ ok: false, error: `${msg.type}: not from this context` });
    return false;
  }
  Promise.resolve()
    .then(() => h(msg, sender))
    .then((value) => reply({ ok: true, value }), (e) => reply({ ok: false, error: String(e?.message || e) }));
  return true;
});

chrome.runtime.onInstalled.addListener(() => syncContentScripts());
chrome.runtime.onStartup.addListener(() => syncContentScripts());

// for tests and the console: the same functions without messaging
self.warmstart = { handlers, settings, db, engine, idle: () => Promise.all([...pending]) };
