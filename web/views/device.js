// One device: what it reported, its state and why, the list entries that
// apply to it, its history, and the decisions (Allow, Block, Quarantine,
// Delete, remote Wipe and its withdrawal, each confirmed) plus what the
// engine would decide now (explain).

import { devicePath } from '../api.js';
import { facts, h, replace, stateTag, time, val } from '../dom.js';

const ACTIONS = [
  ['allow', 'Allow', 'allow', 'allowed'],
  ['block', 'Block', 'block', 'blocked'],
  ['quarantine', 'Quarantine', 'quarantine', 'quarantined'],
];

export default function device(ctx) {
  const [account, deviceId] = ctx.params;
  const path = devicePath(account || '', deviceId || '');
  const title = h('h1', { id: 'view-title', tabindex: '-1' }, deviceId || 'Device');
  const body = h('div');
  const explainOut = h('p', { class: 'explain', role: 'status' });
  ctx.main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/devices' }, '← All devices')), title, body);
  let lastJson = null;

  async function refresh() {
    if (!account || !deviceId) throw new Error('No device named in the address.');
    const data = await ctx.api('GET', path);
    const json = JSON.stringify(data);
    if (json === lastJson) return;
    lastJson = json;
    const d = data.device;
    replace(
      body,
      h(
        'p',
        { class: 'lead' },
        h('span', { class: 'account' }, d.account),
        ' ',
        stateTag(d.state),
        ' ',
        h('span', { class: 'muted' }, `${val(d.reason)}${d.ruleId != null ? ` (rule ${d.ruleId})` : ''}, by ${val(d.stateBy)} `, time(d.stateAt)),
      ),
      h(
        'div',
        { class: 'actions', role: 'group', 'aria-label': 'Decide' },
        ACTIONS.map(([action, label, cls, done]) =>
          h(
            'button',
            { type: 'button', class: cls, id: 'd-' + action, dataset: { action }, 'aria-pressed': String(d.state.toLowerCase() === done), onclick: () => decide(action, done) },
            label,
          ),
        ),
        h('button', { type: 'button', class: 'danger', id: 'd-delete', dataset: { action: 'delete' }, onclick: remove }, 'Delete'),
        !d.wipe
          ? h('button', { type: 'button', class: 'danger', id: 'd-wipe', onclick: () => wipe(d) }, 'Wipe…')
          : d.wipe.state === 'requested'
            ? h('button', { type: 'button', id: 'd-abort-wipe', onclick: abortWipe }, 'Withdraw wipe')
            : null,
        h('button', { type: 'button', id: 'd-explain', onclick: explain }, 'Explain'),
      ),
      explainOut,
      d.wipe
        ? h(
            'p',
            { class: 'wipe', id: 'd-wipe-state', role: 'status' },
            d.wipe.state === 'requested'
              ? `Remote wipe${d.wipe.accountOnly ? ' (account only)' : ''} requested by ${val(d.wipe.requestedBy)} `
              : `Remote wipe${d.wipe.accountOnly ? ' (account only)' : ''} confirmed by the device `,
            time(d.wipe.state === 'requested' ? d.wipe.requestedAt : d.wipe.acknowledgedAt),
            d.wipe.state === 'requested' ? '; the device gets it at its next request.' : '; it stays blocked until deleted.',
          )
        : null,
      h('h2', null, 'Device'),
      facts([
        ['Device ID', d.deviceId],
        ['Type', d.deviceType],
        ['Model', d.model],
        ['OS', d.os],
        ['OS language', d.osLanguage],
        ['User agent', h('span', { class: 'ua' }, val(d.userAgent))],
        ['Friendly name', d.friendlyName],
        ['IMEI', d.imei],
        ['Phone number', d.phoneNumber],
        ['Operator', d.mobileOperator],
        ['EAS version', d.easVersion],
        ['Last address', d.lastAddress],
        ['Last command', d.lastCommand],
        ['First seen', time(d.firstSeen)],
        ['Last seen', time(d.lastSeen)],
      ]),
      h('h2', null, 'List entries'),
      data.entries.length
        ? h(
            'ul',
            { class: 'plain' },
            data.entries.map((e) =>
              h('li', null, stateTag(e.state), ` ${e.deviceId}${e.account ? ' / ' + e.account : ' (every account)'}, by ${val(e.createdBy)} `, time(e.createdAt)),
            ),
          )
        : h('p', { class: 'muted' }, 'No entry: the device is decided by rules and the mode.'),
      h('h2', null, 'History'),
      history(data.history),
    );
  }

  function history(rows) {
    if (!rows.length) return h('p', { class: 'muted' }, 'Nothing recorded yet.');
    return h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'list' },
        h('caption', { class: 'vh' }, 'History, newest first'),
        h('thead', null, h('tr', null, ['When', 'Who', 'What', 'Change'].map((c) => h('th', { scope: 'col' }, c)))),
        h(
          'tbody',
          null,
          rows.map((r) =>
            h(
              'tr',
              null,
              h('td', { 'data-label': 'When' }, time(r.at)),
              h('td', { 'data-label': 'Who' }, val(r.who)),
              h('td', { 'data-label': 'What' }, val(r.what)),
              h('td', { 'data-label': 'Change' }, `${val(r.old)} → ${val(r.new)}`),
            ),
          ),
        ),
      ),
    );
  }

  async function decide(action, done) {
    try {
      await ctx.api('POST', `${path}/${action}`, {});
      ctx.announce(`${deviceId} of ${account} is ${done}.`);
      await refresh();
    } catch (e) {
      ctx.fail(e);
    }
  }

  async function remove() {
    if (!window.confirm(`Forget ${deviceId} of ${account}? It is decided anew at its next request.`)) return;
    try {
      await ctx.api('DELETE', path);
      ctx.announce(`${deviceId} of ${account} is forgotten.`);
      ctx.go('#/devices');
    } catch (e) {
      ctx.fail(e);
    }
  }

  // A remote wipe erases the phone: asked for only after a confirmation that
  // names the device; account only (EAS 16.1) erases this mailbox's data.
  async function wipe(d) {
    const v = parseFloat(d.easVersion || '0');
    let accountOnly = false;
    if (v >= 16.1)
      accountOnly = window.confirm(`${deviceId} speaks EAS ${d.easVersion}: erase only the data of ${account} (OK), or choose Cancel to erase the whole device?`);
    const what = accountOnly ? `the data of ${account} on ${deviceId}` : `everything on ${deviceId} (factory reset)`;
    if (!window.confirm(`Wipe ${what}? The device erases it at its next request; this cannot be undone once it confirms.`)) return;
    try {
      await ctx.api('POST', `${path}/wipe`, accountOnly ? { accountOnly: true } : {});
      ctx.announce(`Wipe of ${deviceId} of ${account} requested.`);
      await refresh();
    } catch (e) {
      ctx.fail(e);
    }
  }

  async function abortWipe() {
    if (!window.confirm(`Withdraw the wipe of ${deviceId}? It syncs again as before.`)) return;
    try {
      await ctx.api('DELETE', `${path}/wipe`);
      ctx.announce(`Wipe of ${deviceId} of ${account} withdrawn.`);
      await refresh();
    } catch (e) {
      ctx.fail(e);
    }
  }

  async function explain() {
    try {
      const x = await ctx.api('GET', `${path}/explain`);
      explainOut.textContent = `Now: ${x.state} (${x.reason}), mode ${x.mode}. ${x.explanation || ''}`;
    } catch (e) {
      ctx.fail(e, explainOut);
    }
  }

  return { refresh, live: true };
}
