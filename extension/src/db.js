// The shopper's history on this device (IndexedDB "warmstart"): events and the products
// they name, per shop origin; and the cache of shops' public catalogs.

const DB = 'warmstart';

export function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      const events = db.createObjectStore('events', { keyPath: 'n', autoIncrement: true });
      events.createIndex('origin', 'origin');
      const products = db.createObjectStore('products', { keyPath: ['origin', 'id'] });
      products.createIndex('origin', 'origin');
      db.createObjectStore('catalogs', { keyPath: 'site' });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Stores events and their products in one transaction. */
export async function record(events, products) {
  const db = await open();
  const tx = db.transaction(['events', 'products'], 'readwrite');
  for (const p of products) tx.objectStore('products').put(p);
  for (const e of events) tx.objectStore('events').add(e);
  await done(tx);
}

export async function all(store) {
  const db = await open();
  return request(db.transaction(store).objectStore(store).getAll());
}

export async function byOrigin(store, origin) {
  const db = await open();
  return request(db.transaction(store).objectStore(store).index('origin').getAll(origin));
}

export async function count(store) {
  const db = await open();
  return request(db.transaction(store).objectStore(store).count());
}

/** Deletes one origin's events and products (or, with no origin, every store's rows). */
export async function erase(origin) {
  const db = await open();
  if (origin === undefined) {
    const tx = db.transaction(['events', 'products', 'catalogs'], 'readwrite');
    for (const s of ['events', 'products', 'catalogs']) tx.objectStore(s).clear();
    return done(tx);
  }
  const tx = db.transaction(['events', 'products'], 'readwrite');
  for (const s of ['events', 'products']) {
    const keys = await request(tx.objectStore(s).index('origin').getAllKeys(origin));
    for (const k of keys) tx.objectStore(s).delete(k);
  }
  return done(tx);
}

export async function getCatalog(site) {
  const db = await open();
  return request(db.transaction('catalogs').objectStore('catalogs').get(site));
}

export async function putCatalog(entry) {
  const db = await open();
  const tx = db.transaction('catalogs', 'readwrite');
  tx.objectStore('catalogs').put(entry);
  return done(tx);
}

/** Replaces the history with an export's events and products. */
export async function importAll(data) {
  const db = await open();
  const tx = db.transaction(['events', 'products'], 'readwrite');
  tx.objectStore('events').clear();
  tx.objectStore('products').clear();
  for (const p of data.products || []) tx.objectStore('products').put(p);
  for (const e of data.events || []) tx.objectStore('events').put(e);
  return done(tx);
}
