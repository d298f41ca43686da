// Rules in the order the engine tries them (each domain's rules, then the
// global ones), with create, delete and move up / down. A move sends the
// whole new order of that scope (POST /rules/reorder), in one transaction.

import { field, h, replace, select, stateTag, time, val } from '../dom.js';

const CHARACTERISTICS = ['DeviceModel', 'DeviceType', 'DeviceOS', 'UserAgent', 'DeviceId'];
const MATCHES = [
  ['glob', 'glob (* and ?)'],
  ['exact', 'exact'],
  ['regex', 'regular expression'],
];
const LEVELS = ['Blocked', 'Quarantined', 'Allowed'];

export default function rules(ctx) {
  const groups = h('div', { id: 'rule-groups' });
  const formError = h('p', { class: 'error', role: 'alert' });
  const form = h(
    'form',
    { class: 'panel grid', 'aria-labelledby': 'new-rule', onsubmit: create },
    h('h2', { id: 'new-rule' }, 'New rule'),
    field('Characteristic', select('characteristic', CHARACTERISTICS, 'DeviceModel')),
    field('Match', select('match', MATCHES, 'glob')),
    field('Pattern', h('input', { name: 'pattern', required: true, autocomplete: 'off', spellcheck: 'false' }), 'e.g. SM-* or iPhone*'),
    field('Decision', select('level', LEVELS, 'Blocked')),
    field('Domain', h('input', { name: 'domain', autocomplete: 'off', spellcheck: 'false' }), 'empty: every domain'),
    field('Order', h('input', { name: 'order', type: 'number', min: '0', step: '1', inputmode: 'numeric' }), 'empty: after the last'),
    formError,
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add rule')),
  );
  ctx.main.append(
    h('h1', { id: 'view-title', tabindex: '-1' }, 'Rules'),
    h('p', { class: 'muted' }, 'A device without its own list entry gets the decision of the first rule that matches it; then the mode applies.'),
    groups,
    form,
  );
  let lastJson = null;
  let shown = [];

  async function refresh() {
    const data = await ctx.api('GET', '/rules');
    const json = JSON.stringify(data.rules);
    if (json === lastJson) return;
    lastJson = json;
    shown = data.rules;
    const scopes = new Map();
    for (const r of data.rules) {
      const k = r.domain === null || r.domain === undefined ? '' : r.domain;
      if (!scopes.has(k)) scopes.set(k, []);
      scopes.get(k).push(r);
    }
    if (scopes.size === 0) {
      replace(groups, h('p', { class: 'muted' }, 'No rule yet.'));
      return;
    }
    replace(
      groups,
      [...scopes].map(([domain, list]) =>
        h(
          'section',
          { class: 'rule-group', 'aria-label': domain ? `Rules of ${domain}` : 'Global rules' },
          h('h2', null, domain ? `Domain ${domain}` : 'Every domain'),
          h('ol', { class: 'rules' }, list.map((r, i) => item(r, i, list))),
        ),
      ),
    );
  }

  function item(r, i, list) {
    const btn = (id, label, aria, onclick, disabled) =>
      h('button', { type: 'button', id, class: 'small', 'aria-label': aria, onclick, disabled }, label);
    return h(
      'li',
      { dataset: { ruleId: r.id } },
      h(
        'div',
        { class: 'rule-text' },
        h('strong', null, r.characteristic),
        ` ${r.match} `,
        h('code', null, r.pattern),
        ' → ',
        stateTag(r.level),
        h('small', { class: 'muted' }, ` rule ${r.id}, order ${val(r.order)}, by ${val(r.createdBy)} `, time(r.createdAt)),
      ),
      h(
        'div',
        { class: 'actions' },
        btn(`rule-up-${r.id}`, '↑', `Move rule ${r.id} up`, () => move(r, list, -1), i === 0),
        btn(`rule-down-${r.id}`, '↓', `Move rule ${r.id} down`, () => move(r, list, 1), i === list.length - 1),
        h('button', { type: 'button', class: 'small danger', id: `rule-del-${r.id}`, onclick: () => remove(r) }, 'Delete'),
      ),
    );
  }

  async function move(r, list, dir) {
    const ids = list.map((x) => x.id);
    const i = ids.indexOf(r.id);
    const j = i + dir;
    if (j < 0 || j >= ids.length) return;
    [ids[i], ids[j]] = [ids[j], ids[i]];
    try {
      await ctx.api('POST', '/rules/reorder', { domain: r.domain ?? null, ids });
      ctx.announce(`Rule ${r.id} moved ${dir < 0 ? 'up' : 'down'}.`);
      await refresh();
      // Stay on the rule that moved (on its other arrow at an end).
      const here = document.getElementById(`rule-${dir < 0 ? 'up' : 'down'}-${r.id}`);
      const other = document.getElementById(`rule-${dir < 0 ? 'down' : 'up'}-${r.id}`);
      (here && !here.disabled ? here : other)?.focus();
    } catch (e) {
      ctx.fail(e);
    }
  }

  async function remove(r) {
    if (!window.confirm(`Delete rule ${r.id} (${r.characteristic} ${r.match} ${r.pattern})?`)) return;
    try {
      await ctx.api('DELETE', `/rules/${r.id}`);
      ctx.announce(`Rule ${r.id} deleted.`);
      await refresh();
      document.getElementById('view-title').focus();
    } catch (e) {
      ctx.fail(e);
    }
  }

  async function create(ev) {
    ev.preventDefault();
    formError.textContent = '';
    const f = new FormData(form);
    const domain = String(f.get('domain')).trim();
    const orderText = String(f.get('order')).trim();
    let order = orderText === '' ? null : Number(orderText);
    if (order === null) {
      // After the last rule of that scope.
      const same = shown.filter((r) => (r.domain ?? '') === domain);
      order = same.reduce((m, r) => Math.max(m, Number(r.order) || 0), 0) + 10;
    }
    const body = {
      characteristic: f.get('characteristic'),
      match: f.get('match'),
      pattern: String(f.get('pattern')),
      level: f.get('level'),
      order,
      domain: domain === '' ? null : domain,
    };
    if (!body.pattern.trim()) {
      formError.textContent = 'Enter a pattern.';
      form.elements.pattern.focus();
      return;
    }
    try {
      const res = await ctx.api('POST', '/rules', body);
      ctx.announce(`Rule ${res && res.id != null ? res.id + ' ' : ''}saved.`);
      form.elements.pattern.value = '';
      await refresh();
    } catch (e) {
      ctx.fail(e, formError);
      form.elements.pattern.focus();
    }
  }

  return { refresh, live: true };
}
