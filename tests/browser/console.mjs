// console.mjs: the abqd console in Debian's headless chromium, as an
// administrator uses it. Run by tests/e2e/test_console.py:
//
//   node console.mjs URL NAME PASSWORD DEVICE_ID SCREENSHOT [BLOCK_DEVICE_ID]
//
// 1. A wrong password shows the API's own message and nothing else opens.
// 2. Log in; print "READY" (the test may now make the phone connect).
// 3. DEVICE_ID appears in the quarantine queue without a reload; the badge
//    counts what the queue shows and what the API says.
// 4. Screenshot of the queue (SCREENSHOT, and a 360 px wide one beside it);
//    at phone width nothing scrolls sideways.
// 5. The keyboard reaches DEVICE_ID's Allow button (Tab only); a click on it
//    allows the device: it leaves the queue and the badge goes down.
// 6. With BLOCK_DEVICE_ID: its detail page (reached from the queue), Block,
//    and the page shows it Blocked with a history row.
// 7. Rules (a bad regex shows the API's message; create, move up, delete),
//    the mode of a domain (set, remove), a notice template (create, edit,
//    delete), each checked against the API and left as it was.
// 8. With ABQ_CONSOLE_FALLBACK=1: the event stream refused, the page
//    reloaded; "READY2", and the next new device appears by polling.
// Each step prints one line; any failure exits 1 with the reason.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const [url, name, password, deviceId, shot, blockId] = process.argv.slice(2);
if (!url || !name || !password || !deviceId || !shot) {
  console.error('usage: node console.mjs URL NAME PASSWORD DEVICE_ID SCREENSHOT [BLOCK_DEVICE_ID]');
  process.exit(2);
}
const TIMEOUT = Number(process.env.ABQ_BROWSER_TIMEOUT_MS || 30000);

function check(cond, message) {
  if (!cond) throw new Error(message);
}
const step = (s) => console.log('ok: ' + s);

// The API as the page sees it (same cookie), for cross-checks.
async function apiGet(page, path) {
  return page.evaluate(async (p) => {
    const r = await fetch('/api/v1' + p, { headers: { Accept: 'application/json' } });
    return { status: r.status, body: await r.json() };
  }, path);
}

async function badge(page) {
  return Number(await page.locator('#badge-count').textContent());
}

async function sections(page) {
  const pattern = 'ZZTEST-' + Date.now() + '-*';
  await page.getByRole('link', { name: 'Rules' }).click();
  await page.getByRole('heading', { name: 'Rules', level: 1 }).waitFor();
  const form = page.locator('form[aria-labelledby="new-rule"]');
  await form.getByLabel('Match').selectOption('regex');
  await form.getByLabel('Pattern').fill('(unclosed');
  const [bad] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/rules') && r.request().method() === 'POST'),
    form.getByRole('button', { name: 'Add rule' }).click(),
  ]);
  check(bad.status() === 400, `a bad regex answered ${bad.status()}`);
  const badMessage = (await bad.json()).error.message;
  await form.locator('.error').filter({ hasText: badMessage }).waitFor();
  step(`a bad rule refused: "${badMessage}"`);
  const before = (await apiGet(page, '/rules')).body.rules.filter((r) => r.domain === null);
  await form.getByLabel('Match').selectOption('glob');
  await form.getByLabel('Pattern').fill(pattern);
  await form.getByRole('button', { name: 'Add rule' }).click();
  const li = page.locator('ol.rules > li').filter({ hasText: pattern });
  await li.waitFor();
  let rules = (await apiGet(page, '/rules')).body.rules.filter((r) => r.domain === null);
  const mine = rules.find((r) => r.pattern === pattern);
  check(mine && rules[rules.length - 1].id === mine.id, 'the new rule is not the last global rule');
  if (before.length > 0) {
    await li.getByRole('button', { name: `Move rule ${mine.id} up` }).click();
    await page.locator('#status').filter({ hasText: `Rule ${mine.id} moved up` }).waitFor();
    rules = (await apiGet(page, '/rules')).body.rules.filter((r) => r.domain === null);
    check(rules[rules.length - 2].id === mine.id, 'moving the rule up did not change the order');
    check(await page.locator(`#rule-up-${mine.id}, #rule-down-${mine.id}`).evaluateAll((b) => b.includes(document.activeElement)),
      'focus left the moved rule');
  }
  await li.getByRole('button', { name: 'Delete' }).click();
  await li.waitFor({ state: 'detached' });
  rules = (await apiGet(page, '/rules')).body.rules;
  check(!rules.some((r) => r.pattern === pattern), 'the rule was not deleted');
  step('rules: create, move up, delete');

  await page.getByRole('link', { name: 'Mode' }).click();
  await page.getByRole('heading', { name: 'Mode and settings' }).waitFor();
  const set = page.locator('form[aria-labelledby="set-title"]');
  await set.getByLabel('Setting').selectOption('abqMode');
  await set.getByLabel('Scope').selectOption('domain');
  await set.getByLabel('Domain or account').fill('console.invalid');
  await set.getByLabel('Value').selectOption('Strict');
  await set.getByRole('button', { name: 'Set' }).click();
  const row = page.locator('tr').filter({ hasText: 'console.invalid' });
  await row.filter({ hasText: 'Strict' }).waitFor();
  let attrs = (await apiGet(page, '/attributes')).body.attributes;
  check(attrs.some((a) => a.scope === 'domain' && a.target === 'console.invalid' && a.value === 'Strict'),
    'the domain mode is not in the API');
  await row.getByRole('button', { name: /^Remove/ }).click();
  await row.waitFor({ state: 'detached' });
  attrs = (await apiGet(page, '/attributes')).body.attributes;
  check(!attrs.some((a) => a.target === 'console.invalid'), 'the domain mode was not removed');
  step('mode: set for a domain, removed');

  await page.getByRole('link', { name: 'Notices' }).click();
  await page.getByRole('heading', { name: 'Notice templates' }).waitFor();
  await page.getByRole('button', { name: 'New template' }).click();
  const ed = page.locator('#template-editor form');
  await ed.getByLabel('Kind').selectOption('blocked');
  await ed.getByLabel('Language').fill('eo');
  const subject = 'Aparato {device_id} blokita ' + Date.now();
  await ed.getByLabel('Subject').fill(subject);
  await ed.getByLabel('Plain text').fill('Saluton {account}.');
  await ed.getByRole('button', { name: 'Save' }).click();
  const tr = page.locator('tr').filter({ hasText: subject });
  await tr.waitFor();
  let t = (await apiGet(page, '/templates')).body.templates.find((x) => x.subject === subject);
  check(t && t.kind === 'blocked' && t.locale === 'eo' && t.bodyPlain === 'Saluton {account}.', 'the template is not stored as typed');
  await tr.getByRole('button', { name: /^Edit/ }).click();
  await ed.getByLabel('Subject').fill(subject + ' (2)');
  await ed.getByRole('button', { name: 'Save' }).click();
  await page.locator('tr').filter({ hasText: subject + ' (2)' }).waitFor();
  await page.locator('tr').filter({ hasText: subject }).getByRole('button', { name: /^Delete/ }).click();
  await page.locator('tr').filter({ hasText: subject }).waitFor({ state: 'detached' });
  t = (await apiGet(page, '/templates')).body.templates.find((x) => x.locale === 'eo');
  check(!t, 'the template was not deleted');
  step('templates: create, edit, delete');

  // Every section fits a 360 px wide phone (nothing scrolls sideways).
  await page.setViewportSize({ width: 360, height: 740 });
  for (const name of ['Quarantine', 'Devices', 'Rules', 'Mode', 'Notices']) {
    await page.getByRole('link', { name: new RegExp('^' + name) }).click();
    await page.locator('main:not([aria-busy])').waitFor();
    await page.waitForTimeout(300);
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(over <= 0, `at 360 px the ${name} section is ${over} px too wide`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  step('every section fits 360 px');
}

const profile = mkdtempSync(join(tmpdir(), 'abqd-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(TIMEOUT);
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  // Chromium logs every 4xx answer; the refusals this script provokes are
  // checked where they happen. Anything else logged as an error is a problem.
  let eventsRefused = false; // step 8 makes the stream fail on purpose
  page.on('console', (m) => {
    if (m.type() !== 'error' || /status of 4\d\d/.test(m.text())) return;
    if (eventsRefused && /ERR_FAILED/.test(m.text())) return;
    problems.push('console: ' + m.text());
  });
  // The page must fetch nothing from anywhere but abqd.
  const origin = new URL(url).origin;
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:')) problems.push('outside request: ' + u);
  });
  let loads = 0;
  page.on('load', () => loads++);
  // The live updates must come over server-sent events (polling is the
  // fallback, checked in step 8).
  let streams = 0;
  page.on('response', (r) => {
    if (r.url().endsWith('/api/v1/events') && r.status() === 200 && /^text\/event-stream/.test(r.headers()['content-type'] || ''))
      streams++;
  });

  // 1. Wrong password.
  await page.goto(url);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Password').fill(password + '-wrong');
  const [loginAnswer] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/login')),
    page.getByRole('button', { name: 'Log in' }).click(),
  ]);
  check(loginAnswer.status() === 401, `a wrong password answered ${loginAnswer.status()}, not 401`);
  const apiMessage = (await loginAnswer.json()).error.message;
  const loginError = page.locator('#login-error');
  await loginError.filter({ hasText: apiMessage }).waitFor();
  check((await loginError.textContent()) === apiMessage, 'the login error is not the API message');
  check(await page.locator('#app').isHidden(), 'the console opened after a wrong password');
  step(`wrong password refused: "${apiMessage}"`);

  // 2. Log in.
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#app').waitFor({ state: 'visible' });
  await page.getByRole('heading', { name: 'Quarantine queue' }).waitFor();
  await page.locator('#queue-summary').filter({ hasText: /\S/ }).waitFor();
  check((await page.locator('#who-name').textContent()) === name, 'the header does not name the administrator');
  const loadsAtLogin = loads;
  await page.evaluate(() => (window.abqNoReload = true));
  step('logged in');
  console.log('READY');

  // 3. The device appears without a reload.
  const card = page.locator(`#queue-list > li[data-device-id="${deviceId}"]`);
  await card.waitFor({ timeout: Math.max(TIMEOUT, 60000) });
  check(loads === loadsAtLogin && (await page.evaluate(() => window.abqNoReload === true)), 'the page was reloaded');
  check(streams > 0, 'no event stream (text/event-stream from /api/v1/events) was opened');
  const text = await card.innerText();
  for (const label of ['Model', 'OS', 'User agent', 'First seen'])
    check(text.includes(label), `the queue card lacks ${label}: ${text}`);
  const api = await apiGet(page, '/devices?state=Quarantined&sort=-firstSeen');
  check(api.status === 200, `GET /devices answered ${api.status}`);
  const mine = api.body.devices.find((d) => d.deviceId === deviceId);
  check(mine, `${deviceId} is not quarantined according to the API`);
  check(text.includes(mine.account), `the card does not name the owner ${mine.account}`);
  for (const [what, v] of [['user agent', mine.userAgent], ['model', mine.model], ['OS', mine.os]])
    if (v) check(text.includes(v), `the card does not show the ${what} ${v}: ${text}`);
  await page.waitForFunction((n) => document.getElementById('badge-count').textContent === String(n), api.body.total);
  const cards = await page.locator('#queue-list > li').count();
  check(cards === api.body.total, `the queue shows ${cards} devices, the API counts ${api.body.total}`);
  const firstSeen = await page.locator('#queue-list > li').evaluateAll((lis) => lis.map((li) => li.dataset.deviceId));
  const order = api.body.devices.map((d) => d.deviceId);
  check(JSON.stringify(firstSeen) === JSON.stringify(order), `queue order ${firstSeen} is not newest first (${order})`);
  step(`${deviceId} of ${mine.account} appeared without a reload; badge ${api.body.total}`);

  // 4. Screenshots (and no sideways scrolling at phone width).
  mkdirSync(dirname(shot), { recursive: true });
  await page.waitForTimeout(2600); // let the arrival highlight fade
  await page.screenshot({ path: shot, fullPage: true });
  console.log('screenshot: ' + shot);
  const phoneShot = shot.replace(/(\.png)?$/, '-phone.png');
  await page.setViewportSize({ width: 360, height: 740 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `at 360 px the page is ${overflow} px too wide`);
  await page.screenshot({ path: phoneShot, fullPage: true });
  console.log('screenshot: ' + phoneShot);
  await page.setViewportSize({ width: 1280, height: 800 });

  // 5. Keyboard reaches Allow; a click allows.
  const allow = card.getByRole('button', { name: /^Allow / });
  await page.locator('body').click({ position: { x: 1, y: 1 } });
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  let reached = false;
  let focusRing = null;
  for (let i = 0; i < 60 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await allow.evaluate((b) => b === document.activeElement);
  }
  check(reached, `Tab never reached the Allow button of ${deviceId}`);
  focusRing = await allow.evaluate((b) => getComputedStyle(b).outlineStyle);
  check(focusRing !== 'none', 'the focused Allow button shows no focus ring');
  step('the keyboard reaches Allow (with a visible focus ring)');
  const before = await badge(page);
  await allow.click();
  await card.waitFor({ state: 'detached' });
  await page.locator('#status').filter({ hasText: `${deviceId} of ${mine.account} is allowed` }).waitFor();
  await page.waitForFunction((n) => document.getElementById('badge-count').textContent === String(n), before - 1);
  const after = await apiGet(page, '/devices/' + encodeURIComponent(mine.account) + '/' + encodeURIComponent(deviceId));
  check(after.body.device.state === 'Allowed', `after Allow the API says ${after.body.device.state}`);
  step(`Allow clicked: ${deviceId} is Allowed, badge ${before} -> ${before - 1}`);

  // 6. Block from the device's detail page.
  if (blockId) {
    const other = page.locator(`#queue-list > li[data-device-id="${blockId}"]`);
    await other.getByRole('link', { name: blockId }).click();
    await page.getByRole('heading', { name: blockId, level: 1 }).waitFor();
    check(loads === loadsAtLogin, 'opening the detail reloaded the page');
    await page.getByRole('button', { name: 'Block', exact: true }).click();
    await page.locator('.lead .tag-blocked').waitFor();
    await page.locator('#status').filter({ hasText: `${blockId} of ` }).waitFor();
    await page.locator('table.list tbody tr').filter({ hasText: 'Blocked' }).first().waitFor();
    const b = await apiGet(page, '/devices?state=Blocked&q=' + encodeURIComponent(blockId));
    check(b.body.devices.some((d) => d.deviceId === blockId), `after Block the API does not list ${blockId} as Blocked`);
    await page.waitForFunction((n) => document.getElementById('badge-count').textContent === String(n), before - 2);
    step(`Block from the detail page: ${blockId} is Blocked, badge ${before - 2}`);

    // 6b. A remote wipe asked for from the detail page, after a confirmation,
    // then withdrawn (the phone stays blocked for the checks that follow).
    const bobAccount = b.body.devices.find((d) => d.deviceId === blockId).account;
    const bobPath = '/devices/' + encodeURIComponent(bobAccount) + '/' + encodeURIComponent(blockId);
    let asked = '';
    page.once('dialog', (d) => {
      asked = d.message();
      d.accept();
    });
    await page.getByRole('button', { name: 'Wipe…' }).click();
    await page.locator('#d-wipe-state').filter({ hasText: `Remote wipe requested by ${name}` }).waitFor();
    check(/Wipe everything on/.test(asked), `the wipe was not confirmed first (dialog: "${asked}")`);
    const w1 = await apiGet(page, bobPath);
    check(w1.body.device.wipe && w1.body.device.wipe.state === 'requested', `after Wipe the API says ${JSON.stringify(w1.body.device.wipe)}`);
    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: 'Withdraw wipe' }).click();
    await page.locator('#d-wipe').waitFor();
    const w2 = await apiGet(page, bobPath);
    check(w2.body.device.wipe === null, `after Withdraw the API says ${JSON.stringify(w2.body.device.wipe)}`);
    step(`Wipe asked (confirmed) and withdrawn from the detail page of ${blockId}`);
  }

  // 7. The other sections against the real API: a rule (a bad one refused
  // with the API's message), its move and delete; the mode of a domain;
  // a notice template. Each leaves nothing behind.
  page.on('dialog', (d) => d.accept());
  await sections(page);

  // 7b. The device list shows the lists as filled: an entry no phone has
  // used yet is a row marked "not seen yet", without a link to a detail page.
  const unseen = process.env.ABQ_CONSOLE_UNSEEN;
  if (unseen) {
    await page.goto(url + '#/devices?q=' + encodeURIComponent(unseen));
    const row = page.locator(`table.list tbody tr[data-device-id="${unseen}"]`);
    await row.waitFor();
    check((await row.getAttribute('data-not-seen-yet')) === 'true', `${unseen} is not marked as an entry`);
    await row.locator('td', { hasText: 'not seen yet' }).waitFor();
    check((await row.locator('a').count()) === 0, `${unseen} links to a device page`);
    check((await row.locator('.tag-allowed').count()) === 1, `${unseen} is not shown Allowed`);
    step(`device list: ${unseen} (an entry) shown as not seen yet`);
  }

  // 8. Without the event stream (refused here), the queue still updates:
  // polling every 5 s. The test connects one more phone after READY2.
  if (process.env.ABQ_CONSOLE_FALLBACK === '1') {
    eventsRefused = true;
    await page.route('**/api/v1/events', (r) => r.abort());
    await page.getByRole('link', { name: /^Quarantine/ }).click();
    await page.reload();
    await page.locator('#queue-summary').filter({ hasText: /\S/ }).waitFor();
    const seen = new Set(await page.locator('#queue-list > li').evaluateAll((lis) => lis.map((li) => li.dataset.deviceId)));
    const streamsBefore = streams;
    const t0 = Date.now();
    console.log('READY2');
    const fresh = await page.waitForFunction(
      (ids) => [...document.querySelectorAll('#queue-list > li')].map((li) => li.dataset.deviceId).find((id) => !ids.includes(id)),
      [...seen],
      { timeout: 60000 },
    );
    check(streams === streamsBefore, 'an event stream was open during the fallback check');
    step(`without events, ${await fresh.jsonValue()} appeared by polling after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  check(problems.length === 0, problems.join('; '));
  step('no page errors, no outside requests');
} catch (e) {
  console.error('FAIL: ' + (e && e.message ? e.message : e));
  process.exitCode = 1;
} finally {
  if (context) await context.close();
  rmSync(profile, { recursive: true, force: true });
}
