// The popup: allow the current shop (host access is asked per shop), pause, what is stored
// per shop, export / import / delete, and the two opt-ins.
const $ = (id) => document.getElementById(id);
const call = async (type, extra = {}) => {
  const r = await chrome.runtime.sendMessage({ type, ...extra });
  if (!r || !r.ok) throw new Error(r ? r.error : 'no answer');
  return r.value;
};
const say = (text) => ($('message').textContent = text);

async function currentOrigin() {
  // ?origin= lets a test (or a keyboard user opening the popup as a page) name the shop
  const q = new URLSearchParams(location.search).get('origin');
  if (q) return new URL(q).origin;
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  try {
    const u = new URL(tab?.url || '');
    return u.protocol.startsWith('http') ? u.origin : null;
  } catch {
    return null;
  }
}

async function render(summary) {
  const s = summary.settings;
  $('paused').checked = s.paused;
  $('serverMode').checked = s.serverMode;
  $('reportClicks').checked = s.reportClicks;
  $('reportClicks').disabled = !s.serverMode;
  if (document.activeElement !== $('service')) $('service').value = s.service;
  const body = $('shops').querySelector('tbody');
  body.replaceChildren();
  const entries = Object.entries(summary.shops);
  $('none').hidden = entries.length > 0;
  for (const [origin, shop] of entries) {
    const tr = document.createElement('tr');
    tr.dataset.origin = origin;
    const name = document.createElement('td');
    name.textContent = new URL(origin).host + (shop.site ? ` (${shop.site})` : '');
    const ev = document.createElement('td');
    ev.className = 'events';
    ev.textContent = shop.events;
    const pr = document.createElement('td');
    pr.textContent = shop.products;
    const del = document.createElement('td');
    const b = document.createElement('button');
    b.textContent = 'Delete';
    b.className = 'danger forget';
    b.onclick = async () => render(await call('forget', { origin }));
    del.append(b);
    tr.append(name, ev, pr, del);
    body.append(tr);
  }
  const origin = await currentOrigin();
  $('origin').textContent = origin || 'Open a shop to allow it.';
  const here = origin && summary.shops[origin];
  $('allow').hidden = !origin || !!here?.allowed;
  $('here-status').textContent = here?.allowed ? (s.paused ? 'Allowed (capture paused).' : 'Allowed: your shopping here is remembered on this device.') : '';
}

$('allow').onclick = async () => {
  const origin = await currentOrigin();
  const u = new URL(origin);
  // host access for this shop only (optional host permission, asked now)
  const granted = await chrome.permissions.request({ origins: [`${u.protocol}//${u.hostname}/*`] });
  if (!granted) return say('Access to this shop was not granted.');
  let site = null;
  try {
    const sites = await call('sites');
    const label = u.hostname.split('.')[0];
    if (!sites.includes(label)) {
      $('site').replaceChildren(...sites.map((x) => new Option(x, x)));
      $('site-pick').hidden = false;
      site = sites[0] || null;
    }
  } catch (e) {
    say(`Service not reachable (${e.message}); the shop is allowed anyway.`);
  }
  await render(await call('allow', { origin, site }));
  say('Allowed. Reload the shop’s page to start.');
};
$('site').onchange = async () => render(await call('allow', { origin: await currentOrigin(), site: $('site').value }));
$('paused').onchange = async () => render(await call('set', { values: { paused: $('paused').checked } }));
$('serverMode').onchange = async () => render(await call('set', { values: { serverMode: $('serverMode').checked, reportClicks: false } }));
$('reportClicks').onchange = async () => render(await call('set', { values: { reportClicks: $('reportClicks').checked } }));
$('service').onchange = async () => {
  const v = $('service').value.trim().replace(/\/+$/, '');
  let u;
  try {
    u = new URL(v);
    if (!u.protocol.startsWith('http')) throw new Error('not http(s)');
  } catch {
    return say(`Not a service address: ${v}`);
  }
  if (!(u.hostname === '127.0.0.1' || u.hostname === 'localhost')) {
    const ok = await chrome.permissions.request({ origins: [`${u.protocol}//${u.hostname}/*`] });
    if (!ok) return say('Access to the service was not granted.');
  }
  render(await call('set', { values: { service: v } }));
};
$('erase').onclick = async () => {
  render(await call('eraseAll'));
  say('Everything was deleted.');
};
$('export').onclick = async () => {
  const data = await call('export');
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 1)], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = 'warmstart-history.json';
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
};
$('import').onchange = async () => {
  const file = $('import').files[0];
  if (!file) return;
  try {
    render(await call('import', { data: JSON.parse(await file.text()) }));
    say('Imported.');
  } catch (e) {
    say(`Not imported: ${e.message}`);
  }
};

call('summary').then(render, (e) => say(e.message));
