// The first screen: devices waiting in quarantine, newest first, each with
// what an administrator needs to decide, and Allow / Block at hand.

import { deviceHash, devicePath, query } from '../api.js';
import { ago, facts, h, replace, time, val } from '../dom.js';

const DONE = { allow: 'allowed', block: 'blocked' };

export default function queue(ctx) {
  const summary = h('p', { class: 'muted', id: 'queue-summary' });
  const list = h('ul', { class: 'cards', id: 'queue-list', 'aria-labelledby': 'view-title' });
  ctx.main.append(
    h(
      'div',
      { class: 'view-head' },
      h('h1', { id: 'view-title', tabindex: '-1' }, 'Quarantine queue'),
      summary,
    ),
    list,
  );
  let shown = null; // keys on screen, to mark the ones that just arrived
  let lastJson = null;

  const key = (d) => `${d.account}/${d.deviceId}`;
  const idOf = (what, d) => `q-${what}-${encodeURIComponent(key(d))}`;

  async function refresh() {
    const data = await ctx.api(
      'GET',
      '/devices' + query({ state: 'Quarantined', sort: '-firstSeen', limit: 200 }),
    );
    ctx.setBadge(data.total);
    const json = JSON.stringify(data.devices);
    if (json === lastJson) return;
    lastJson = json;
    const n = data.total;
    summary.textContent =
      n === 0
        ? 'No device is waiting. New devices appear here as they connect.'
        : `${n} ${n === 1 ? 'device is' : 'devices are'} waiting for a decision` +
          (data.devices.length < n ? ` (the newest ${data.devices.length} shown)` : '') +
          '.';
    const before = shown;
    shown = new Set(data.devices.map(key));
    replace(list, data.devices.map((d) => card(d, before !== null && !before.has(key(d)))));
  }

  function card(d, isNew) {
    const name = `${d.deviceId} (${d.account})`;
    const buttons = ['allow', 'block'].map((action) =>
      h(
        'button',
        {
          type: 'button',
          class: action === 'allow' ? 'allow' : 'block',
          id: idOf(action, d),
          dataset: { action },
          'aria-label': `${action === 'allow' ? 'Allow' : 'Block'} ${name}`,
          onclick: (ev) => decide(d, action, ev.currentTarget),
        },
        action === 'allow' ? 'Allow' : 'Block',
      ),
    );
    return h(
      'li',
      {
        class: 'card' + (isNew ? ' new' : ''),
        dataset: { account: d.account, deviceId: d.deviceId },
      },
      h(
        'div',
        { class: 'card-head' },
        h('h2', null, d.account),
        h('span', { class: 'muted', title: d.firstSeen || '' }, 'first seen ' + ago(d.firstSeen)),
      ),
      facts([
        ['Device', h('a', { href: deviceHash(d.account, d.deviceId) }, d.deviceId)],
        ['Model', d.model],
        ['OS', d.os],
        ['Type', d.deviceType],
        ['User agent', h('span', { class: 'ua' }, val(d.userAgent))],
        ['First seen', time(d.firstSeen)],
      ]),
      h('div', { class: 'actions' }, buttons),
    );
  }

  async function decide(d, action, button) {
    const li = button.closest('li');
    const next = li.nextElementSibling || li.previousElementSibling;
    for (const b of li.querySelectorAll('button')) b.disabled = true;
    try {
      await ctx.api('POST', devicePath(d.account, d.deviceId) + '/' + action, {});
      ctx.announce(`${d.deviceId} of ${d.account} is ${DONE[action]}.`);
      // Keep the keyboard in the queue: on the next device, else the title.
      const target = next ? idOf('allow', { account: next.dataset.account, deviceId: next.dataset.deviceId }) : null;
      await refresh();
      const el = (target && document.getElementById(target)) || document.getElementById('view-title');
      if (el) el.focus();
    } catch (e) {
      for (const b of li.querySelectorAll('button')) b.disabled = false;
      ctx.fail(e);
    }
  }

  return { refresh, live: true };
}
