// All devices, filtered (state, domain, type, model, OS, last seen) and
// searched, then the list entries no device has used yet ("not seen yet":
// what the administrator allowed, blocked or quarantined ahead of the phone).
// The filters live in the address (#/devices?state=Blocked&q=sm-), so a
// filtered list can be bookmarked and the back button works.

import { deviceHash, query } from '../api.js';
import { field, h, replace, select, stateTag, time, val } from '../dom.js';

const PAGE = 50;
const DAY = 86400;
const SEEN = [
  ['', 'any time'],
  ['1d', 'in the last day'],
  ['7d', 'in the last 7 days'],
  ['30d', 'in the last 30 days'],
  ['old30d', 'not for 30 days'],
  ['old90d', 'not for 90 days'],
];

const SORTS = [
  ['account', 'by account'],
  ['-lastSeen', 'last seen first'],
  ['-firstSeen', 'newest first'],
];

export default function devices(ctx) {
  const q = ctx.query;
  const input = (name, type) => h('input', { name, type: type || 'text', value: q.get(name) || '' });
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter devices', onsubmit: apply },
    field('Search', h('input', { name: 'q', type: 'search', value: q.get('q') || '', placeholder: 'account, device, model, agent…' })),
    field('State', select('state', [['', 'any'], 'Quarantined', 'Allowed', 'Blocked', 'Discovery'], q.get('state') || '')),
    field('Domain', input('domain')),
    field('Type', input('type')),
    field('Model', input('model')),
    field('OS', input('os')),
    field('Last seen', select('seen', SEEN, q.get('seen') || '')),
    field('Order', select('sort', SORTS, q.get('sort') || 'account')),
    h(
      'div',
      { class: 'filter-actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('a', { href: '#/devices', class: 'button' }, 'Clear'),
    ),
  );
  const summary = h('p', { id: 'devices-summary', role: 'status', class: 'muted' });
  const results = h('div', { class: 'table-wrap' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  ctx.main.append(h('h1', { id: 'view-title', tabindex: '-1' }, 'Devices'), form, summary, results, pager);
  let lastJson = null;

  function apply(ev) {
    ev.preventDefault();
    const params = {};
    for (const [k, v] of new FormData(form)) if (String(v).trim()) params[k] = String(v).trim();
    if (params.sort === 'account') delete params.sort;
    ctx.go('#/devices' + query(params));
  }

  function apiParams() {
    const p = {};
    for (const k of ['q', 'state', 'domain', 'type', 'model', 'os']) if (q.get(k)) p[k] = q.get(k);
    const seen = q.get('seen') || '';
    const m = /^(old)?(\d+)d$/.exec(seen);
    if (m) {
      const t = Math.floor(Date.now() / 1000) - Number(m[2]) * DAY;
      p[m[1] ? 'seen_before' : 'seen_since'] = t;
    }
    p.sort = q.get('sort') || 'account';
    p.unseen = 'true';
    p.limit = PAGE;
    p.offset = Math.max(0, Number(q.get('offset')) || 0);
    return p;
  }

  async function refresh() {
    const p = apiParams();
    const data = await ctx.api('GET', '/devices' + query(p));
    const json = JSON.stringify(data);
    if (json === lastJson) return;
    lastJson = json;
    const first = data.total === 0 ? 0 : data.offset + 1;
    const last = data.offset + data.devices.length;
    summary.textContent =
      data.total === 0 ? 'No device matches.' : `Devices ${first}–${last} of ${data.total}.`;
    replace(results, data.devices.length ? table(data.devices) : null);
    replace(pager, pageLink('Previous', data.offset - PAGE, data.offset > 0), pageLink('Next', data.offset + PAGE, last < data.total));
  }

  function pageLink(label, offset, enabled) {
    if (!enabled) return null;
    const params = Object.fromEntries(q);
    params.offset = Math.max(0, offset) || '';
    return h('a', { class: 'button', href: '#/devices' + query(params) }, label);
  }

  function table(list) {
    const cols = ['Account', 'Device', 'Type', 'Model', 'OS', 'State', 'Last seen'];
    return h(
      'table',
      { class: 'list' },
      h('caption', { class: 'vh' }, 'Devices'),
      h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        null,
        list.map((d) =>
          h(
            'tr',
            { dataset: { account: d.account || '', deviceId: d.deviceId, notSeenYet: d.notSeenYet ? 'true' : 'false' } },
            h('td', { 'data-label': 'Account' }, d.notSeenYet && d.account === null ? h('span', { class: 'muted' }, 'any account') : d.account),
            h('td', { 'data-label': 'Device' }, d.notSeenYet ? d.deviceId : h('a', { href: deviceHash(d.account, d.deviceId) }, d.deviceId)),
            h('td', { 'data-label': 'Type' }, val(d.deviceType)),
            h('td', { 'data-label': 'Model' }, val(d.model)),
            h('td', { 'data-label': 'OS' }, val(d.os)),
            h('td', { 'data-label': 'State' }, stateTag(d.state)),
            h('td', { 'data-label': 'Last seen' }, d.notSeenYet ? h('span', { class: 'muted not-seen' }, 'not seen yet') : time(d.lastSeen)),
          ),
        ),
      ),
    );
  }

  return { refresh, live: true };
}
