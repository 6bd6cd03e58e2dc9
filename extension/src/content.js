// Runs only on shops the user allowed. Reports the page (its HTML, to the extension's own
// service worker, which reads the products with the device engine) and add-to-cart /
// wish-list actions; shows the recommendations panel on a shop without local history.
(() => {
  if (window.__warmstart) return;
  window.__warmstart = true;
  const send = (msg) =>
    chrome.runtime.sendMessage(msg).then((r) => (r && r.ok ? r.value : null), () => null);

  let pageProducts = [];
  send({ type: 'page', url: location.href, html: document.documentElement.outerHTML }).then((r) => {
    pageProducts = (r && r.products) || [];
  });

  // add to cart / wish list: forms and buttons that say so
  const kindOf = (el) => {
    const text = [el.id, el.name, el.className, el.getAttribute?.('action'), el.textContent, el.value]
      .filter((x) => typeof x === 'string')
      .join(' ');
    if (/wish\s*-?list|wishlist|add[-_ ]?to[-_ ]?wish/i.test(text)) return 'wishlist';
    if (/add[-_ ]?to[-_ ]?(cart|bag|basket)|\/cart\/add|add-to-cart/i.test(text)) return 'cart';
    return null;
  };
  document.addEventListener(
    'submit',
    (e) => {
      const kind = kindOf(e.target) || kindOf(e.submitter || {});
      if (kind && pageProducts.length) send({ type: 'event', kind, ids: pageProducts });
    },
    true,
  );
  document.addEventListener(
    'click',
    (e) => {
      const b = e.target.closest?.('button, a, input[type=submit]');
      if (!b || b.closest('form')) return; // forms are counted on submit
      const kind = kindOf(b);
      if (kind && pageProducts.length) send({ type: 'event', kind, ids: pageProducts });
    },
    true,
  );

  // the panel
  const nav = performance.getEntriesByType('navigation')[0];
  send({ type: 'panel' }).then((panel) => {
    if (!panel || !panel.items || !panel.items.length) return;
    const host = document.createElement('warmstart-panel');
    const root = host.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = `
      :host { all: initial; }
      .panel { position: fixed; right: 16px; bottom: 16px; width: 340px; max-height: 80vh; overflow: auto;
        background: #fff; color: #222; font: 13px/1.35 system-ui, sans-serif; border-radius: 10px;
        box-shadow: 0 6px 24px rgba(0,0,0,.25); z-index: 2147483647; }
      header { display: flex; justify-content: space-between; align-items: center; padding: 10px 12px;
        background: #1f4e79; color: #fff; border-radius: 10px 10px 0 0; font-weight: 600; }
      header button { background: none; border: 0; color: #fff; font-size: 16px; cursor: pointer; }
      ol { list-style: none; margin: 0; padding: 6px 8px; }
      li a { display: flex; gap: 8px; padding: 6px 4px; color: inherit; text-decoration: none; border-radius: 6px; }
      li a:hover { background: #f1f5fa; }
      img { width: 48px; height: 64px; object-fit: cover; border-radius: 4px; background: #eee; flex: none; }
      .t { font-weight: 600; } .p { color: #1f4e79; } .w { color: #666; font-size: 12px; }
      footer { padding: 6px 12px 10px; color: #666; font-size: 11px; }`;
    const box = document.createElement('div');
    box.className = 'panel';
    box.setAttribute('role', 'complementary');
    box.setAttribute('aria-label', 'Recommended for you by warmstart');
    const head = document.createElement('header');
    head.textContent = 'Picked for you';
    const close = document.createElement('button');
    close.textContent = '×';
    close.title = 'Close';
    close.onclick = () => host.remove();
    head.append(close);
    const list = document.createElement('ol');
    panel.items.forEach((it, position) => {
      const li = document.createElement('li');
      li.dataset.id = it.id;
      const a = document.createElement('a');
      if (it.url) a.href = it.url;
      a.onclick = () => send({ type: 'click', recommendation: panel.recommendation, id: it.id, position });
      if (it.image) {
        const img = document.createElement('img');
        img.src = it.image;
        img.alt = '';
        a.append(img);
      }
      const text = document.createElement('div');
      const t = document.createElement('div');
      t.className = 't';
      t.textContent = it.title;
      text.append(t);
      if (typeof it.price_usd === 'number') {
        const p = document.createElement('div');
        p.className = 'p';
        p.textContent = `$${it.price_usd.toFixed(2)}`;
        text.append(p);
      }
      if (it.because) {
        const w = document.createElement('div');
        w.className = 'w';
        const verb = { purchase: 'bought', cart: 'put in your cart', wishlist: 'wished for' }[it.because.kind] || 'viewed';
        w.textContent = `Because you ${verb} ${it.because.title} on ${it.because.shop}`;
        text.append(w);
      }
      a.append(text);
      li.append(a);
      list.append(li);
    });
    const foot = document.createElement('footer');
    foot.textContent =
      panel.mode === 'server'
        ? 'Ranked by the warmstart service from a profile vector computed on this device.'
        : 'Ranked on this device from your history on other shops; it never left your browser.';
    box.append(head, list, foot);
    root.append(style, box);
    document.documentElement.append(host);
    const shownMs = nav ? performance.now() - nav.domContentLoadedEventStart : -1;
    host.dataset.shownMs = String(Math.round(shownMs));
    host.dataset.rankMs = String(Math.round(panel.ms));
    host.dataset.mode = panel.mode;
    host.dataset.model = panel.model;
  });
})();
