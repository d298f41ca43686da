// Notice templates: the texts of the mails abqd sends (to users about their
// device, to administrators), per kind and language, globally or for one
// domain. A text left empty falls back to the next template in the lookup.

import { enc } from '../api.js';
import { field, h, replace, select, time, val } from '../dom.js';

// The kinds abqd knows: mails to a device's owner, then to administrators.
const KINDS = [
  ['quarantined', 'quarantined (to the user)'],
  ['blocked', 'blocked (to the user)'],
  ['allowed', 'allowed (to the user)'],
  ['admin-digest', 'admin-digest (the periodic digest)'],
  ['admin-immediate', 'admin-immediate (one quarantined device)'],
];
const PLACEHOLDERS = '{account} {device_id} {device_type} {model} {os} {user_agent} {imei} {eas_version} {first_seen} {state} {contact} {devices}';

function tplPath(t) {
  return `/templates/${enc(t.kind)}/${enc(t.locale)}` + (t.domain ? `?domain=${enc(t.domain)}` : '');
}

export default function templates(ctx) {
  const listBox = h('div');
  const editor = h('div', { id: 'template-editor' });
  ctx.main.append(
    h('h1', { id: 'view-title', tabindex: '-1' }, 'Notice templates'),
    h('p', { class: 'muted' }, 'Texts may use the placeholders ', h('code', null, PLACEHOLDERS), '.'),
    h('p', null, h('button', { type: 'button', class: 'primary', id: 'tpl-new', onclick: () => edit(null) }, 'New template')),
    listBox,
    editor,
  );
  let lastJson = null;

  async function refresh() {
    const data = await ctx.api('GET', '/templates');
    const json = JSON.stringify(data);
    if (json === lastJson) return;
    lastJson = json;
    const list = data.templates || [];
    if (!list.length) {
      replace(listBox, h('p', { class: 'muted' }, 'No template is stored: abqd sends its built-in texts.'));
      return;
    }
    replace(
      listBox,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'list' },
          h('thead', null, h('tr', null, ['Scope', 'Kind', 'Language', 'Subject', 'Set by', ''].map((c) => h('th', { scope: 'col' }, c)))),
          h(
            'tbody',
            null,
            list.map((t, i) =>
              h(
                'tr',
                null,
                h('td', { 'data-label': 'Scope' }, t.domain ? `domain ${t.domain}` : 'global'),
                h('td', { 'data-label': 'Kind' }, t.kind),
                h('td', { 'data-label': 'Language' }, t.locale),
                h('td', { 'data-label': 'Subject' }, val(t.subject)),
                h('td', { 'data-label': 'Set by' }, val(t.setBy), ' ', time(t.setAt)),
                h(
                  'td',
                  { class: 'row-actions' },
                  h('button', { type: 'button', class: 'small', id: `tpl-edit-${i}`, 'aria-label': `Edit ${t.kind} ${t.locale}${t.domain ? ' of ' + t.domain : ''}`, onclick: () => edit(t) }, 'Edit'),
                  h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${t.kind} ${t.locale}${t.domain ? ' of ' + t.domain : ''}`, onclick: () => remove(t) }, 'Delete'),
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }

  function edit(t) {
    const isNew = t === null;
    t = t || { kind: KINDS[0][0], locale: 'en', domain: null };
    const error = h('p', { class: 'error', role: 'alert' });
    const text = (name, value, attrs) => h('input', { name, value: value ?? '', autocomplete: 'off', ...attrs });
    const area = (name, value, rows) => h('textarea', { name, rows, spellcheck: 'true' }, value ?? '');
    const form = h(
      'form',
      { class: 'panel grid', 'aria-labelledby': 'tpl-title', onsubmit: save },
      h('h2', { id: 'tpl-title', tabindex: '-1' }, isNew ? 'New template' : `Edit ${t.kind} (${t.locale})`),
      isNew
        ? field('Kind', select('kind', KINDS, t.kind))
        : field('Kind', text('kind', t.kind, { readonly: true })),
      field('Language', text('locale', t.locale, { required: true, readonly: !isNew }), 'en, de, de-DE…'),
      field('Domain', text('domain', t.domain, { readonly: !isNew }), 'empty: every domain'),
      field('From', text('from', t.from, { inputmode: 'email' }), 'empty: the configured sender'),
      field('Reply to', text('replyTo', t.replyTo, { inputmode: 'email' })),
      h('div', { class: 'wide' }, field('Subject', text('subject', t.subject))),
      h('div', { class: 'wide' }, field('Plain text', area('bodyPlain', t.bodyPlain, 8))),
      h('div', { class: 'wide' }, field('HTML (optional)', area('bodyHtml', t.bodyHtml, 5))),
      error,
      h(
        'div',
        { class: 'form-actions' },
        h('button', { type: 'submit', class: 'primary' }, 'Save'),
        h('button', { type: 'button', onclick: close }, 'Cancel'),
      ),
    );
    replace(editor, form);
    form.querySelector(isNew ? '[name=kind]' : '[name=subject]').focus();

    async function save(ev) {
      ev.preventDefault();
      error.textContent = '';
      const f = new FormData(form);
      const s = (k) => {
        const v = String(f.get(k) ?? '');
        return v.trim() === '' ? null : v;
      };
      const key = { kind: (s('kind') || '').trim(), locale: (s('locale') || '').trim(), domain: s('domain') && s('domain').trim() };
      if (!key.kind || !key.locale) {
        error.textContent = 'Enter a kind and a language.';
        return;
      }
      const body = { from: s('from'), replyTo: s('replyTo'), subject: s('subject'), bodyPlain: s('bodyPlain'), bodyHtml: s('bodyHtml') };
      try {
        await ctx.api('PUT', tplPath(key), body);
        ctx.announce(`Template ${key.kind} (${key.locale}) saved.`);
        close();
        await refresh();
      } catch (e) {
        ctx.fail(e, error);
      }
    }
  }

  function close() {
    replace(editor);
    document.getElementById('tpl-new').focus();
  }

  async function remove(t) {
    if (!window.confirm(`Delete the template ${t.kind} (${t.locale})${t.domain ? ' of ' + t.domain : ''}?`)) return;
    try {
      await ctx.api('DELETE', tplPath(t));
      ctx.announce(`Template ${t.kind} (${t.locale}) deleted.`);
      await refresh();
      document.getElementById('view-title').focus();
    } catch (e) {
      ctx.fail(e);
    }
  }

  return { refresh, live: false };
}
