// app.js: the console's shell. Session (login, logout, CSRF), the sections
// (hash routes, so that the back button and bookmarks work without any server
// routing), the count badge, and live updates: server-sent events from
// /api/v1/events, with polling every 5 s whenever that stream is not open.

import { api, ApiError, onUnauthenticated, setCsrf } from './api.js';
import queue from './views/queue.js';
import devices from './views/devices.js';
import device from './views/device.js';
import rules from './views/rules.js';
import mode from './views/mode.js';
import templates from './views/templates.js';
import provisioning from './views/provisioning.js';

const views = { queue, devices, device, rules, mode, templates, provisioning };
const POLL_MS = 5000;
const $ = (id) => document.getElementById(id);

let current = null; // the view on screen: {refresh, live}
let events = null;
let pollTimer = null;
let retryTimer = null;
let refreshTimer = null;
let routeSeq = 0;
let badgeCount = null;

function announce(message) {
  $('error').textContent = '';
  $('status').textContent = message;
}

// Shows the API's message where the administrator is working (a form's own
// alert line) or at the top of the page.
function fail(err, where) {
  const message = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  if (where) {
    where.textContent = message;
    return;
  }
  $('status').textContent = '';
  $('error').textContent = message;
  $('error').scrollIntoView({ block: 'nearest' });
}

function clearMessages() {
  $('status').textContent = '';
  $('error').textContent = '';
}

function setBadge(total) {
  if (typeof total !== 'number' || total === badgeCount) return;
  badgeCount = total;
  $('badge-count').textContent = String(total);
  $('badge').classList.toggle('zero', total === 0);
  document.title = total > 0 ? `(${total}) abqd console` : 'abqd console';
}

async function refreshBadge() {
  try {
    const data = await api('GET', '/devices?state=Quarantined&limit=1');
    setBadge(data.total);
  } catch (e) {
    if (e.status !== 401) console.warn('badge:', e.message);
  }
}

// --- routing -------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?', 2);
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { name: parts[0] || 'queue', params: parts.slice(1), query: new URLSearchParams(qs || '') };
}

// Navigation from a view (after Delete, a filter): the message it just
// announced stays on screen.
let keepMessages = false;
function go(hash) {
  if (location.hash === hash) {
    route(true).then(() => $('main').focus());
  } else {
    keepMessages = true;
    location.hash = hash;
  }
}

async function route(keep) {
  const seq = ++routeSeq;
  const { name, params, query } = parseHash();
  const view = views[name] || views.queue;
  for (const a of document.querySelectorAll('[data-nav]')) {
    const on = a.dataset.nav === name || (name === 'device' && a.dataset.nav === 'devices');
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!keep) clearMessages();
  const main = $('main');
  main.replaceChildren();
  main.setAttribute('aria-busy', 'true');
  const ctx = { main, params, query, api, announce, fail, go, setBadge };
  try {
    const v = view(ctx);
    current = v;
    await v.refresh();
  } catch (e) {
    if (seq === routeSeq) fail(e);
  } finally {
    main.removeAttribute('aria-busy');
  }
}

// Reload what is on screen (debounced: a burst of changes is one reload).
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    refreshBadge();
    if (current && current.live) {
      try {
        await current.refresh();
      } catch (e) {
        if (e.status !== 401) fail(e);
      }
    }
  }, 200);
}

// --- live updates ----------------------------------------------------------

function openEvents() {
  clearTimeout(retryTimer);
  if (!('EventSource' in window)) return;
  events = new EventSource('/api/v1/events');
  events.addEventListener('change', scheduleRefresh);
  // After a reconnect, changes may have been missed.
  events.addEventListener('open', scheduleRefresh);
  events.addEventListener('error', () => {
    if (events && events.readyState === EventSource.CLOSED) {
      events.close();
      events = null;
      retryTimer = setTimeout(openEvents, 30000);
    }
  });
}

function startLive() {
  stopLive();
  openEvents();
  pollTimer = setInterval(() => {
    if (!events || events.readyState !== EventSource.OPEN) scheduleRefresh();
  }, POLL_MS);
}

function stopLive() {
  if (events) events.close();
  events = null;
  clearInterval(pollTimer);
  clearTimeout(retryTimer);
  clearTimeout(refreshTimer);
}

// --- session ---------------------------------------------------------------

function showLogin(message) {
  stopLive();
  setCsrf(null);
  current = null;
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('login-password').value = '';
  const name = $('login-name');
  (name.value ? $('login-password') : name).focus();
}

function loggedIn(session) {
  setCsrf(session.csrf);
  $('who-name').textContent = session.name;
  $('login').hidden = true;
  $('app').hidden = false;
  badgeCount = null;
  refreshBadge();
  startLive();
  route().then(() => $('main').focus());
}

async function login(ev) {
  ev.preventDefault();
  const form = ev.target;
  const name = $('login-name').value.trim();
  const password = $('login-password').value;
  const button = form.querySelector('button');
  if (!name || !password) {
    $('login-error').textContent = 'Enter your name and password.';
    return;
  }
  button.disabled = true;
  $('login-error').textContent = '';
  try {
    loggedIn(await api('POST', '/login', { name, password }));
  } catch (e) {
    $('login-error').textContent = e.message;
    $('login-password').select();
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  try {
    await api('POST', '/logout', {});
  } catch (e) {
    if (e.status !== 401) {
      fail(e);
      return;
    }
  }
  showLogin('You are logged out.');
}

async function boot() {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  // The skip link must not become a route (#main).
  document.querySelector('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    $('main').focus();
  });
  window.addEventListener('hashchange', () => {
    const keep = keepMessages;
    keepMessages = false;
    if (!$('app').hidden) route(keep).then(() => $('main').focus());
  });
  onUnauthenticated(() => {
    if (!$('app').hidden) showLogin('Your session ended. Log in again.');
  });
  try {
    loggedIn(await api('GET', '/session'));
  } catch (e) {
    showLogin(e.status === 401 ? '' : e.message);
  }
}

boot();
