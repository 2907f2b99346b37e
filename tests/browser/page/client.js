// What the mobile client does, run by a real browser from an origin other than the API's
// (docs/api.md: conventions, auth, users, images, scan, SSE). Every API call carries credentials, as the client's do.
//
// The flow is a list of named steps run after the login redirect lands on `#/home`; each step's
// outcome goes into `window.__results[name]` for the test to assert. Adding a flow (the chat stream)
// is one more `steps.push([...])` here and one more check in test_client_flow.py.
'use strict';

const API = window.ECO2_API;
const state = {};
const steps = [];

async function call(method, path, { json, headers = {}, credentials = 'include' } = {}) {
  const init = { method, credentials, headers: { ...headers } };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  const response = await fetch(path.startsWith('http') ? path : API + path, init);
  const text = await response.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* not JSON: keep the text */ }
  return { status: response.status, body, retryAfter: response.headers.get('Retry-After') };
}

// An EventSource with credentials; resolves when `stopAt` arrives (the client then closes it).
// Frames are grouped per connection: the browser reconnects by itself after the server ends a
// connection (max duration), sending Last-Event-ID.
function stream(path, names, stopAt = 'done', timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const source = new EventSource(API + path, { withCredentials: true });
    const connections = [];
    let transportErrors = 0;
    const timer = setTimeout(() => { source.close(); reject(new Error(`no ${stopAt} after ${timeoutMs} ms: ${JSON.stringify(connections)}`)); }, timeoutMs);
    source.onopen = () => connections.push([]);
    for (const name of names) {
      source.addEventListener(name, (event) => {
        if (event.data === undefined) return; // the transport's own 'error' event, counted below
        connections[connections.length - 1].push({ event: name, id: event.lastEventId, data: JSON.parse(event.data) });
        if (name === stopAt) {
          clearTimeout(timer);
          source.close();
          resolve({ connections, transportErrors });
        }
      });
    }
    source.addEventListener('error', (event) => {
      if (event.data !== undefined) return;
      transportErrors += 1;
      if (source.readyState === EventSource.CLOSED) {
        clearTimeout(timer);
        reject(new Error(`stream closed by the browser: ${JSON.stringify(connections)}`));
      }
    });
  });
}

function photo() {
  // A real PNG, drawn and encoded by the browser, like a picture taken in the app.
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 64;
  const context = canvas.getContext('2d');
  context.fillStyle = '#9ad0f5'; context.fillRect(0, 0, 64, 64);
  context.fillStyle = '#ffffff'; context.fillRect(24, 8, 16, 48);
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
}

// ---------------------------------------------------------------------------------- the steps

steps.push(['session', async () => ({
  start: JSON.parse(sessionStorage.getItem('login_start') || 'null'),
  landed: location.hash,
  refresh: await call('POST', '/api/v1/auth/refresh'),
})]);

steps.push(['profile', async () => {
  const before = await call('GET', '/api/v1/users/me');
  const update = await call('PATCH', '/api/v1/users/me', { json: { nickname: '브라우저친구', phone_number: '010 1234 5678' } });
  const after = await call('GET', '/api/v1/users/me');
  const invalid = await call('PATCH', '/api/v1/users/me', { json: { phone_number: '12' } });
  return { before, update, after, invalid };
}]);

steps.push(['upload', async () => {
  const presign = await call('POST', '/api/v1/images/scan', { json: { filename: 'bottle.png', content_type: 'image/png' } });
  // The client sends the file with only Content-Type, to the URL as given.
  const put = await fetch(presign.body.upload_url, { method: 'PUT', headers: { 'Content-Type': 'image/png' }, body: await photo() });
  await put.arrayBuffer();
  state.imageUrl = presign.body.cdn_url;
  const image = await fetch(presign.body.cdn_url);
  const bytes = new Uint8Array(await image.arrayBuffer());
  return { presign, put: put.status, image: { status: image.status, type: image.headers.get('Content-Type'), png: bytes[1] === 0x50 } };
}]);

steps.push(['scan', async () => {
  const submit = await call('POST', '/api/v1/scan', { json: { image_url: state.imageUrl }, headers: { 'X-Idempotency-Key': `browser-${Date.now()}` } });
  const events = await stream(submit.body.stream_url, ['queued', 'vision', 'rule', 'answer', 'reward', 'done', 'error']);
  // On done the client fetches the result exactly once.
  const result = await call('GET', submit.body.result_url);
  const unknown = await call('GET', '/api/v1/scan/00000000-0000-4000-8000-000000000000/result');
  return { submit, events, result, unknown };
}]);

steps.push(['collection', async () => {
  // The collection screen after a rewarded scan (the grant reaches the users service by event).
  let characters;
  for (let attempt = 0; attempt < 50; attempt += 1) {
    characters = await call('GET', '/api/v1/users/me/characters');
    if (characters.status !== 200 || characters.body.length > 1) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { characters };
}]);

// The chat screen: the latest chat (?limit=1), a new one, a message, its stream (named events only,
// as the chat client listens: snapshot, deltas appended blindly, done), then the history reloaded.
const CHAT_EVENTS = ['queued', 'intent', 'vision', 'waste_rag', 'character', 'location', 'bulk_waste', 'weather',
  'collection_point', 'recyclable_price', 'web_search', 'image_generation', 'general', 'aggregator', 'summarize',
  'answer', 'needs_input', 'token', 'token_recovery', 'done', 'error'];

steps.push(['chat', async () => {
  const latest = await call('GET', '/api/v1/chat?limit=1');
  const created = await call('POST', '/api/v1/chat');
  const send = await call('POST', `/api/v1/chat/${created.body.id}/messages`, {
    json: { message: '페트병 어떻게 버려요?', model: 'gpt-5.2', user_location: { latitude: 37.5665, longitude: 126.978 } },
  });
  const events = await stream(send.body.stream_url, CHAT_EVENTS);
  let bubble = '';
  for (const frame of events.connections.flat()) {
    if (frame.event === 'token_recovery') bubble = frame.data.accumulated;
    if (frame.event === 'token') bubble += frame.data.content;
  }
  const history = await call('GET', `/api/v1/chat/${created.body.id}?limit=20`);
  const listed = await call('GET', '/api/v1/chat?limit=1');
  return { latest, created, send, events, bubble, history, listed };
}]);

steps.push(['logout', async () => {
  const out = await call('POST', '/api/v1/auth/logout');
  const me = await call('GET', '/api/v1/users/me');
  const refresh = await call('POST', '/api/v1/auth/refresh');
  return { out, me, refresh };
}]);

// ------------------------------------------------------------------------------------ running

async function run() {
  const results = {};
  for (const [name, step] of steps) {
    try {
      results[name] = await step();
    } catch (error) {
      results[name] = { exception: String((error && error.stack) || error) };
      break;
    }
  }
  finish(results);
}

function finish(results) {
  window.__results = results;
  document.getElementById('out').textContent = JSON.stringify(results, null, 1);
  window.__done = true;
}

async function startLogin(provider) {
  // The client's login button: start, then let the browser go to the provider.
  const start = await call('GET', `/api/v1/auth/${provider}`, { headers: { 'X-Frontend-Origin': location.origin } });
  sessionStorage.setItem('login_start', JSON.stringify({ status: start.status, provider: start.body.data && start.body.data.provider }));
  location.href = start.body.data.authorization_url;
}

for (const button of document.querySelectorAll('button[data-provider]')) {
  button.addEventListener('click', () => startLogin(button.dataset.provider).catch((error) => finish({ login: String(error) })));
}
if (location.hash === '#/home') run();
else if (location.hash.startsWith('#/login')) finish({ login: location.hash });
