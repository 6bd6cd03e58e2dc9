// The device engine (crates/device compiled to WebAssembly): JSON in, JSON out over linear
// memory (see crates/device/src/abi.rs). One instance per service worker.

let instance = null;

export async function engine() {
  if (!instance) {
    const bytes = await (await fetch(chrome.runtime.getURL('warmstart_device.wasm'))).arrayBuffer();
    const { instance: inst } = await WebAssembly.instantiate(bytes, {});
    instance = inst.exports;
  }
  return api;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function put(bytes) {
  const ptr = instance.ws_alloc(bytes.length);
  new Uint8Array(instance.memory.buffer, ptr, bytes.length).set(bytes);
  return [ptr, bytes.length];
}

function result(code) {
  const out = new Uint8Array(instance.memory.buffer, instance.ws_out_ptr(), instance.ws_out_len());
  const value = JSON.parse(dec.decode(out));
  if (code !== 0) throw new Error(value.error || 'device engine error');
  return value;
}

function callJson(fn, value) {
  const [p, n] = put(enc.encode(JSON.stringify(value)));
  try {
    return result(fn(p, n));
  } finally {
    instance.ws_free(p, n);
  }
}

const api = {
  /** A page's kind and products: {kind: 'product'|'order'|'other', products: [...]}. */
  capture(html, url, site) {
    return callJson(instance.ws_capture, { html, url, site });
  },
  /** Loads a shop's WSVEC001 bytes (ArrayBuffer) and optional catalog JSON text. */
  loadShop(site, vectors, catalogText) {
    const s = put(enc.encode(site));
    const v = put(new Uint8Array(vectors));
    const c = catalogText ? put(enc.encode(catalogText)) : [0, 0];
    try {
      return result(instance.ws_load_shop(s[0], s[1], v[0], v[1], c[0], c[1]));
    } finally {
      instance.ws_free(s[0], s[1]);
      instance.ws_free(v[0], v[1]);
      if (c[1]) instance.ws_free(c[0], c[1]);
    }
  },
  /** Loads a neighbour-list model's WSNBR001 bytes (ArrayBuffer) into a shop. */
  loadNeighbours(site, bytes) {
    const s = put(enc.encode(site));
    const b = put(new Uint8Array(bytes));
    try {
      return result(instance.ws_load_neighbours(s[0], s[1], b[0], b[1]));
    } finally {
      instance.ws_free(s[0], s[1]);
      instance.ws_free(b[0], b[1]);
    }
  },
  unloadShop(site) {
    const [p, n] = put(enc.encode(site));
    try {
      return result(instance.ws_unload_shop(p, n));
    } finally {
      instance.ws_free(p, n);
    }
  },
  /** {target, history: [{site, id, weight}], k, ...} → {items, profile, used, unknown}. */
  rank(request) {
    return callJson(instance.ws_rank, request);
  },
};
