// The mode (abqMode) at global, domain and account scope, and the other
// settings (attributes) where they are set. A domain setting overrides the
// global one, an account setting the domain's.

import { enc } from '../api.js';
import { field, h, replace, select, time, val } from '../dom.js';

const MODE = 'abqMode';
const MODES = ['Permissive', 'Interactive', 'Strict', 'Disabled'];
const MODE_HELP = {
  Permissive: 'new devices are allowed unless a rule says otherwise',
  Interactive: 'new devices wait in quarantine for a decision',
  Strict: 'new devices are blocked unless allowed',
  Disabled: 'no access control: every device syncs',
};

function attrPath(scope, target, name) {
  return scope === 'global' ? `/attributes/global/${enc(name)}` : `/attributes/${scope}/${enc(target)}/${enc(name)}`;
}

export default function mode(ctx) {
  const globalBox = h('div', { class: 'panel' });
  const overrides = h('div');
  const others = h('div');
  const addError = h('p', { class: 'error', role: 'alert' });
  const scopeSel = h('select', { name: 'scope' });
  const attrHelp = h('p', { class: 'muted wide', id: 'attr-help' });
  const nameSel = h('select', { name: 'name' });
  const valueSlot = h('div', { class: 'value-slot' });
  const addForm = h(
    'form',
    { class: 'panel grid', 'aria-labelledby': 'set-title', onsubmit: add },
    h('h2', { id: 'set-title' }, 'Set a value'),
    field('Setting', nameSel),
    attrHelp,
    field('Scope', scopeSel),
    field('Domain or account', h('input', { name: 'target', autocomplete: 'off', spellcheck: 'false' }), 'e.g. example.com or alice@example.com; empty for global'),
    valueSlot,
    addError,
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary' }, 'Set')),
  );
  ctx.main.append(
    h('h1', { id: 'view-title', tabindex: '-1' }, 'Mode and settings'),
    globalBox,
    h('h2', null, 'Domains and accounts'),
    overrides,
    addForm,
    h('h2', null, 'Other global settings'),
    others,
  );
  let known = [];
  let lastJson = null;

  const knownOf = (name) => known.find((k) => k.name === name);
  const valuesOf = (name) => {
    const k = knownOf(name);
    return k && Array.isArray(k.values) && k.values.length ? k.values : name === MODE ? MODES : null;
  };
  const valueControl = (name, value, id) => {
    const values = valuesOf(name);
    const c = values ? select('value', values, value) : h('input', { name: 'value', value: value ?? '', autocomplete: 'off' });
    if (id) c.id = id;
    return c;
  };

  // The scopes, values and help of the chosen setting (from the API's "known").
  function chooseSetting() {
    const k = knownOf(nameSel.value) || {};
    const scopes = (Array.isArray(k.scopes) && k.scopes.length ? k.scopes : ['global', 'domain', 'account'])
      .slice()
      .sort((a, b) => ['domain', 'account', 'global'].indexOf(a) - ['domain', 'account', 'global'].indexOf(b));
    const was = scopeSel.value;
    replace(scopeSel, scopes.map((sc) => h('option', { value: sc, selected: sc === was }, sc)));
    attrHelp.textContent = k.help ? `${k.help} (default ${val(k.default)})` : '';
    replace(valueSlot, field('Value', valueControl(nameSel.value)));
  }
  nameSel.addEventListener('change', chooseSetting);
  nameSel.setAttribute('aria-describedby', 'attr-help');

  async function refresh() {
    const data = await ctx.api('GET', '/attributes');
    const json = JSON.stringify(data);
    if (json === lastJson) return;
    lastJson = json;
    known = data.known || [];
    const attrs = data.attributes || [];
    const chosen = nameSel.value || MODE;
    replace(nameSel, (known.length ? known.map((k) => k.name) : [MODE]).map((n) => h('option', { value: n, selected: n === chosen }, n)));
    chooseSetting();

    const g = attrs.find((a) => a.scope === 'global' && a.name === MODE);
    const current = g ? g.value : (knownOf(MODE) || {}).default || 'Permissive';
    const modeSel = valueControl(MODE, current, 'global-mode');
    const help = h('p', { class: 'muted', id: 'global-mode-help' }, MODE_HELP[current] || '');
    modeSel.setAttribute('aria-describedby', 'global-mode-help');
    modeSel.addEventListener('change', () => (help.textContent = MODE_HELP[modeSel.value] || ''));
    replace(
      globalBox,
      h(
        'form',
        { class: 'inline', onsubmit: (ev) => saveGlobal(ev, modeSel.value) },
        field('Global mode', modeSel),
        h('button', { type: 'submit', class: 'primary' }, 'Save'),
      ),
      help,
      h('p', { class: 'muted' }, g ? ['Set by ', val(g.setBy), ' ', time(g.setAt), '.'] : 'Not set: the default applies.'),
    );

    const scoped = attrs.filter((a) => a.scope !== 'global');
    replace(overrides, scoped.length ? table(scoped, true) : h('p', { class: 'muted' }, 'No domain or account has its own setting.'));
    const rest = attrs.filter((a) => a.scope === 'global' && a.name !== MODE);
    replace(others, rest.length ? table(rest, false) : h('p', { class: 'muted' }, 'Every other setting has its default.'));
  }

  function table(rows, withTarget) {
    const cols = withTarget ? ['Scope', 'Domain or account', 'Setting', 'Value', 'Set by', ''] : ['Setting', 'Value', 'Set by', ''];
    return h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'list' },
        h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, c)))),
        h(
          'tbody',
          null,
          rows.map((a) =>
            h(
              'tr',
              null,
              withTarget ? h('td', { 'data-label': 'Scope' }, a.scope) : null,
              withTarget ? h('td', { 'data-label': 'Target' }, val(a.target)) : null,
              h('td', { 'data-label': 'Setting' }, a.name),
              h('td', { 'data-label': 'Value' }, h('strong', null, val(a.value))),
              h('td', { 'data-label': 'Set by' }, val(a.setBy), ' ', time(a.setAt)),
              h(
                'td',
                null,
                h('button', { type: 'button', class: 'small', 'aria-label': `Remove ${a.name} of ${a.target || 'global'}`, onclick: () => unset(a) }, 'Remove'),
              ),
            ),
          ),
        ),
      ),
    );
  }

  async function put(scope, target, name, value, where) {
    try {
      await ctx.api('PUT', attrPath(scope, target, name), { value });
      ctx.announce(`${name} is ${value} ${scope === 'global' ? 'globally' : `for ${target}`}.`);
      await refresh();
      return true;
    } catch (e) {
      ctx.fail(e, where);
      return false;
    }
  }

  function saveGlobal(ev, value) {
    ev.preventDefault();
    put('global', null, MODE, value);
  }

  async function add(ev) {
    ev.preventDefault();
    addError.textContent = '';
    const f = new FormData(addForm);
    const scope = String(f.get('scope'));
    const target = scope === 'global' ? null : String(f.get('target')).trim();
    if (scope !== 'global' && !target) {
      addError.textContent = 'Enter a domain or an account.';
      addForm.elements.target.focus();
      return;
    }
    if (await put(scope, target, String(f.get('name')), String(f.get('value')), addError)) addForm.elements.target.value = '';
  }

  async function unset(a) {
    try {
      await ctx.api('DELETE', attrPath(a.scope, a.target, a.name));
      ctx.announce(`${a.name} of ${a.target || 'global'} removed: the ${a.scope === 'account' ? 'domain or global' : 'global'} value applies.`);
      await refresh();
      document.getElementById('view-title').focus();
    } catch (e) {
      ctx.fail(e);
    }
  }

  return { refresh, live: false };
}
