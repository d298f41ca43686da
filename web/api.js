// api.js: the admin API (docs/api.md) as the console uses it. One place keeps
// the CSRF token of the session and turns every refusal into an ApiError that
// carries the server's own message, so the page can show it as it is.

let csrf = null;
let unauthenticated = () => {};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setCsrf(token) {
  csrf = token;
}

// Called when the session is gone (expired, daemon restarted, logged out
// elsewhere): the page goes back to the login form.
export function onUnauthenticated(fn) {
  unauthenticated = fn;
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  let res;
  try {
    res = await fetch('/api/v1' + path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'abqd did not answer: ' + e.message);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    let message = err.message || `${res.status} ${res.statusText || 'error'}`;
    const retry = res.headers.get('Retry-After');
    if (res.status === 429 && retry && !/\d/.test(message)) message += ` (try again in ${retry} s)`;
    if (res.status === 401 && path !== '/login') unauthenticated();
    throw new ApiError(res.status, err.code || 'http', message);
  }
  return data;
}

export const enc = encodeURIComponent;

export function devicePath(account, deviceId) {
  return `/devices/${enc(account)}/${enc(deviceId)}`;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// The console's own address of a device's detail.
export function deviceHash(account, deviceId) {
  return `#/device/${enc(account)}/${enc(deviceId)}`;
}
