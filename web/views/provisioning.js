// The provisioning policy (docs/provisioning.md) of one scope: the global
// policy, a domain's or an account's. Each key shows its effective value and
// where it comes from; a value set at this scope can be changed or removed
// (the inherited value applies again), any other key can be set here.
// #/provisioning, #/provisioning/domain/example.com, #/provisioning/account/alice@example.com

import { enc } from '../api.js';
import { field, h, replace, select, val } from '../dom.js';

function basePath(scope, target) {
  return scope === 'global' ? '/provisioning/global' : `/provisioning/${scope}/${enc(target)}`;
}

// The words of a source, for people: "domain example.com", "default".
function sourceText(k, scope, shownTarget, domainOf) {
  if (k.source === 'default') return 'default';
  if (k.source === 'global') return 'global';
  if (k.source === scope) return `${scope} ${shownTarget}`;
  return `domain ${domainOf}`;
}

// What a key takes, for its edit control and its hint.
function control(k, id) {
  const value = k.value ?? '';
  if (k.type === 'boolean') return Object.assign(select('value', [['1', '1 (yes)'], ['0', '0 (no)']], value), { id });
  if (k.type === 'enum') {
    const opts = String(k.values || '')
      .replace(/, or |, | or /g, '|')
      .split('|')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => [s.split(' ')[0], s]);
    if (k.optional) opts.push(['none', 'none (not sent)']);
    return Object.assign(select('value', opts, value), { id });
  }
  return h('input', { id, name: 'value', value, autocomplete: 'off', spellcheck: 'false' });
}

function hint(k) {
  if (k.type === 'number') return `${k.min} to ${k.max}${k.optional ? ', or none (not sent)' : ''}`;
  if (k.type === 'list') return 'comma-separated; empty: no list is sent';
  return null;
}

export default function provisioning(ctx) {
  const [scopeParam, targetParam] = ctx.params;
  const scope = scopeParam === 'domain' || scopeParam === 'account' ? scopeParam : 'global';
  const target = scope === 'global' ? null : targetParam || '';
  const summary = h('div', { class: 'panel' });
  const list = h('div');
  const scopeSel = select('scope', ['global', 'domain', 'account'], scope);
  const targetIn = h('input', { name: 'target', value: target || '', autocomplete: 'off', spellcheck: 'false' });
  const pick = h(
    'form',
    { class: 'panel inline', onsubmit: choose },
    field('Scope', scopeSel),
    field('Domain or account', targetIn, 'empty for global'),
    h('button', { type: 'submit', class: 'primary' }, 'Show'),
  );
  ctx.main.append(h('h1', { id: 'view-title', tabindex: '-1' }, 'Provisioning policy'), pick, summary, list);
  let lastJson = null;

  function choose(ev) {
    ev.preventDefault();
    const s = scopeSel.value;
    const t = targetIn.value.trim();
    ctx.go(s === 'global' || !t ? '#/provisioning' : `#/provisioning/${s}/${enc(t)}`);
  }

  async function refresh() {
    if (scope !== 'global' && !target) {
      replace(summary, h('p', { class: 'muted' }, 'Enter a domain or an account.'));
      return;
    }
    const data = await ctx.api('GET', basePath(scope, target));
    const json = JSON.stringify(data);
    if (json === lastJson) return;
    lastJson = json;
    const where = scope === 'global' ? 'global' : `${scope} ${data.target}`;
    const domainOf = scope === 'account' ? String(data.target).split('@')[1] || '' : data.target;
    replace(
      summary,
      h('p', null, 'Policy of ', h('strong', null, where), ': version ', h('code', null, String(data.version)), '. '),
      h('p', { class: 'muted' }, data.imposes ? 'It asks phones for something.' : 'It imposes nothing (every key has its default).'),
    );
    const keys = data.provisioning || [];
    replace(
      list,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'list' },
          h('thead', null, h('tr', null, ['Key', 'Value', 'Source', 'Change', ''].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', null, keys.map((k, i) => row(k, i, data.target, domainOf))),
        ),
      ),
    );
  }

  function row(k, i, shownTarget, domainOf) {
    const id = `prov-${i}`;
    const err = h('small', { class: 'error', role: 'alert' });
    const c = control(k, id);
    const own = k.source === scope;
    return h(
      'tr',
      null,
      h('td', { 'data-label': 'Key', title: k.help || '' }, k.key, k.since ? null : h('small', { class: 'muted' }, ' (not sent)')),
      h('td', { 'data-label': 'Value' }, h('strong', null, val(k.value))),
      h('td', { 'data-label': 'Source' }, sourceText(k, scope, shownTarget, domainOf)),
      h(
        'td',
        { 'data-label': 'Change' },
        h(
          'form',
          { class: 'inline', onsubmit: (ev) => set(ev, k, c, err) },
          h('label', { for: id, class: 'vh' }, `${k.key} at ${scope}`),
          c,
          h('button', { type: 'submit', class: 'small' }, 'Set'),
        ),
        hint(k) ? h('small', { class: 'muted' }, hint(k)) : null,
        err,
      ),
      h(
        'td',
        null,
        own ? h('button', { type: 'button', class: 'small', 'aria-label': `Remove ${k.key} of ${shownTarget || 'global'}`, onclick: () => unset(k) }, 'Remove') : null,
      ),
    );
  }

  async function set(ev, k, c, err) {
    ev.preventDefault();
    err.textContent = '';
    try {
      await ctx.api('PUT', `${basePath(scope, target)}/${enc(k.key)}`, { value: c.value });
      ctx.announce(`${k.key} is ${c.value === '' ? 'an empty list' : c.value} ${scope === 'global' ? 'globally' : `for ${target}`}.`);
      await refresh();
    } catch (e) {
      ctx.fail(e, err);
    }
  }

  async function unset(k) {
    try {
      await ctx.api('DELETE', `${basePath(scope, target)}/${enc(k.key)}`);
      ctx.announce(`${k.key} of ${target || 'global'} removed: the inherited value applies.`);
      await refresh();
      document.getElementById('view-title').focus();
    } catch (e) {
      ctx.fail(e);
    }
  }

  return { refresh, live: false };
}
