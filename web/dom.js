// dom.js: building the page from data. Everything a phone or a user sent
// (user agents, models, names) goes in as text nodes, never as markup.

// h('button', {class: 'x', onclick: f}, 'text', child, [more]) -> element.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) add(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// "—" for an unknown value (the API sends null).
export function val(v) {
  return v === null || v === undefined || v === '' ? '—' : String(v);
}

const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

// A <time> showing the local time, with the exact UTC value in its title.
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return h('time', { datetime: iso, title: iso }, fmt.format(d));
}

export function ago(iso) {
  if (!iso) return 'never';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (Number.isNaN(s)) return iso;
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function stateTag(state) {
  return h('span', { class: 'tag tag-' + String(state || 'none').toLowerCase() }, val(state));
}

// A <dl> of [label, value] pairs.
export function facts(pairs) {
  return h(
    'dl',
    { class: 'facts' },
    pairs.map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, v instanceof Node ? v : val(v)))),
  );
}

// A labelled form control: field('Pattern', input).
export function field(label, control, hint) {
  if (!control.id) control.id = 'f-' + Math.random().toString(36).slice(2, 9);
  return h(
    'div',
    { class: 'field' },
    h('label', { for: control.id }, label),
    control,
    hint ? h('small', { class: 'muted' }, hint) : null,
  );
}

export function select(name, options, value) {
  return h(
    'select',
    { name },
    options.map((o) => {
      const [v, label] = Array.isArray(o) ? o : [o, o];
      return h('option', { value: v, selected: v === value }, label);
    }),
  );
}

// Re-render a container in place and give focus back to the element that had
// it (by id), so that a live refresh never throws a keyboard user off.
export function replace(container, ...children) {
  const active = document.activeElement;
  const id = active && container.contains(active) ? active.id : null;
  container.replaceChildren();
  add(container, children);
  if (id) {
    const again = document.getElementById(id);
    if (again) again.focus();
  }
}
