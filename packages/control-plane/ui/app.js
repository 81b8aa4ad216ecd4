// The dashboard: read-only views of what the REST API answers, plus a rollback button. It keeps no
// state of its own: everything on screen is fetched with the token pasted into this tab
// (sessionStorage), and the API decides what the token may see and do.
const TOKEN_KEY = 'lb.token';
const REFRESH_MS = 2000;

class ApiFailure extends Error {
  constructor(status, body) {
    super(typeof body === 'object' && body !== null && body.detail ? body.detail : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, init = {}) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}` };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { ...init, headers });
  const type = res.headers.get('content-type') ?? '';
  const body = type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new ApiFailure(res.status, body);
  return body;
}

/** An element with attributes and children; text always goes in as text, never as markup. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  return node;
}

function table(headers, rows, attrs = {}) {
  return el(
    'table',
    attrs,
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        headers.map((h) => el('th', {}, h)),
      ),
    ),
    el('tbody', {}, rows),
  );
}

function badge(text, kind = '') {
  return el('span', { class: `badge ${kind}` }, text);
}

const fmt = (n) => (typeof n === 'number' ? (Number.isInteger(n) ? String(n) : n.toFixed(2)) : '—');
const json = (v) => (v === undefined ? '' : JSON.stringify(v));

async function nodesView() {
  const [{ nodes }, { version }] = await Promise.all([api('/v1/nodes'), api('/v1/config')]);
  const connected = nodes.filter((n) => n.status === 'connected');
  const converged = connected.filter((n) => n.configVersion === version).length;
  return [
    el('h2', {}, `Nodes — current version ${version}, ${converged} of ${connected.length} connected nodes run it`),
    table(
      ['node', 'status', 'version', 'address', 'zone', 'replica', 'last NACK'],
      nodes.map((n) =>
        el(
          'tr',
          { 'data-node': n.id },
          el('td', {}, n.id),
          el('td', {}, badge(n.status, n.status === 'connected' ? 'ok' : 'warn')),
          el('td', {}, badge(String(n.configVersion), n.configVersion === version ? 'ok' : 'warn')),
          el('td', {}, n.address),
          el('td', {}, n.zone),
          el('td', {}, n.replica),
          el('td', {}, n.lastNack ? `v${n.lastNack.version}: ${n.lastNack.error}` : ''),
        ),
      ),
      { id: 'nodes-table' },
    ),
  ];
}

async function poolsView() {
  const [{ pools }, stats] = await Promise.all([api('/v1/pools'), api('/v1/stats').catch(() => ({ pools: [] }))]);
  const out = [];
  for (const name of Object.keys(pools).sort()) {
    const health = await api(`/v1/pools/${encodeURIComponent(name)}/health`);
    // A pool no node served in its last window is idle (0 req/s), not unknown, once nodes report.
    const idle = stats.nodes?.length > 0 ? { requestsPerSecond: 0, errorRatePercent: 0 } : undefined;
    const traffic = stats.pools.find((p) => p.pool === name) ?? idle;
    const perBackend = new Map((traffic?.backends ?? []).map((b) => [b.backend, b]));
    out.push(
      el('h2', {}, `Pool ${name}`, traffic ? ` — ${fmt(traffic.requestsPerSecond)} req/s, ${fmt(traffic.errorRatePercent)} % errors` : ''),
      table(
        ['backend', 'address', 'state', 'health', 'ejections', 'req/s', 'errors %', 'mean ms'],
        health.backends.map((b) => {
          const t = perBackend.get(b.id);
          return el(
            'tr',
            { 'data-backend': `${name}/${b.id}` },
            el('td', {}, b.id, b.registered ? ' ' : '', b.registered ? badge('registered') : ''),
            el('td', {}, b.address),
            el('td', {}, b.state),
            el('td', {}, badge(b.status, b.status === 'healthy' ? 'ok' : b.status === 'unhealthy' ? 'bad' : '')),
            el('td', {}, b.ejections.length > 0 ? badge(`${b.ejections.length} node(s)`, 'bad') : ''),
            el('td', {}, fmt(t?.requestsPerSecond)),
            el('td', {}, fmt(t?.errorRatePercent)),
            el('td', {}, fmt(t?.meanMs)),
          );
        }),
        { class: 'pool' },
      ),
    );
  }
  return out.length > 0 ? out : [el('p', {}, 'No pools yet.')];
}

async function trafficView() {
  const stats = await api('/v1/stats');
  const row = (name, f) =>
    el(
      'tr',
      {},
      el('td', {}, name),
      [f.requestsPerSecond, f.errorRatePercent, f.p50Ms, f.p90Ms, f.p99Ms, f.meanMs].map((v) => el('td', {}, fmt(v))),
    );
  const headers = ['', 'req/s', 'errors %', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms'];
  return [
    el('h2', {}, 'Routes'),
    table(
      ['route', ...headers.slice(1)],
      stats.routes.map((r) => row(r.route, r)),
    ),
    el('h2', {}, 'Nodes'),
    table(
      ['node', ...headers.slice(1)],
      stats.nodes.map((n) => row(`${n.id} (v${n.configVersion})`, n)),
    ),
  ];
}

async function showDiff(version, against) {
  const diff = await api(`/v1/versions/${version}/diff${against === undefined ? '' : `?against=${against}`}`);
  const detail = document.getElementById('detail');
  detail.replaceChildren(
    el('h2', {}, `Version ${diff.to} against ${diff.from}`),
    diff.changes.length === 0
      ? el('p', {}, 'No changes.')
      : table(
          ['change', 'path', `before (v${diff.from})`, `after (v${diff.to})`],
          diff.changes.map((c) =>
            el('tr', {}, el('td', {}, c.op), el('td', {}, c.path), el('td', { class: 'before' }, json(c.before)), el('td', { class: 'after' }, json(c.after))),
          ),
          { class: 'diff', id: 'diff-table' },
        ),
  );
}

async function rollBack(version) {
  if (!window.confirm(`Roll back to version ${version}? This makes a new version with its config, pushed to every node.`)) return;
  const detail = document.getElementById('detail');
  try {
    const result = await api(`/v1/versions/${version}/rollback`, { method: 'POST', body: '{}' });
    detail.replaceChildren(
      el(
        'p',
        { id: 'rollback-result' },
        result.committed ? `Rolled back: version ${result.version} has the config of version ${version}.` : 'Nothing to do: that config is current.',
      ),
    );
  } catch (err) {
    detail.replaceChildren(el('p', { class: 'error', id: 'rollback-result' }, `Rollback refused: ${err.message}`));
  }
  await render();
}

async function versionsView() {
  const [{ versions }, { version: current }] = await Promise.all([api('/v1/versions?limit=50'), api('/v1/config')]);
  return [
    el('h2', {}, 'History'),
    table(
      ['version', 'created', 'by', 'message', '', ''],
      versions.map((v) =>
        el(
          'tr',
          { 'data-version': v.version },
          el('td', {}, String(v.version), ' ', v.version === current ? badge('current', 'ok') : '', v.staged ? badge('staged', 'warn') : ''),
          el('td', {}, new Date(v.createdAt).toLocaleString()),
          el('td', {}, v.actor ?? v.author),
          el('td', {}, v.message, v.rollbackOf !== undefined ? ` (rollback to ${v.rollbackOf})` : ''),
          el('td', {}, el('button', { type: 'button', class: 'diff-button', onclick: () => void showDiff(v.version) }, 'Diff')),
          el(
            'td',
            {},
            v.version === current
              ? ''
              : el('button', { type: 'button', class: 'rollback-button', onclick: () => void rollBack(v.version) }, `Roll back to ${v.version}`),
          ),
        ),
      ),
      { id: 'versions-table' },
    ),
  ];
}

async function rolloutsView() {
  const { rollouts } = await api('/v1/rollouts');
  const kind = { running: 'warn', paused: 'warn', done: 'ok', aborted: 'bad' };
  return [
    el('h2', {}, 'Rollouts'),
    rollouts.length === 0
      ? el('p', {}, 'No rollouts yet: stage a write (?stage=true), then POST /v1/versions/{n}/rollout.')
      : table(
          ['rollout', 'version', 'state', 'step', 'nodes on it', 'reason'],
          rollouts.map((r) =>
            el(
              'tr',
              {},
              el('td', {}, r.id),
              el('td', {}, `${r.baseline} → ${r.version}`),
              el('td', {}, badge(r.state, kind[r.state])),
              el('td', {}, `${r.step} of ${r.steps.length}`),
              el('td', {}, r.canaries.join(', ')),
              el('td', {}, r.reason ?? '', r.rollbackVersion !== null ? ` (rolled back as version ${r.rollbackVersion})` : ''),
            ),
          ),
        ),
  ];
}

const VIEWS = { nodes: nodesView, pools: poolsView, traffic: trafficView, versions: versionsView, rollouts: rolloutsView };

function tab() {
  const name = location.hash.slice(1);
  return Object.hasOwn(VIEWS, name) ? name : 'nodes';
}

let rendering = false;

async function render() {
  if (rendering || !sessionStorage.getItem(TOKEN_KEY)) return;
  rendering = true;
  const name = tab();
  for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('active', a.dataset.tab === name);
  try {
    const content = await VIEWS[name]();
    if (tab() === name) document.getElementById('view').replaceChildren(...content);
    document.getElementById('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (err instanceof ApiFailure && err.status === 401) return showLogin('That token is not valid (any more).');
    document.getElementById('status').textContent = `error: ${err.message}`;
  } finally {
    rendering = false;
  }
}

function showLogin(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById('login').hidden = false;
  document.getElementById('forget').hidden = true;
  document.getElementById('login-error').textContent = message;
  document.getElementById('view').replaceChildren();
  document.getElementById('detail').replaceChildren();
}

function start() {
  document.getElementById('login').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById('token').value.trim());
    document.getElementById('token').value = '';
    document.getElementById('login').hidden = true;
    document.getElementById('forget').hidden = false;
    void render();
  });
  document.getElementById('forget').addEventListener('click', () => showLogin());
  window.addEventListener('hashchange', () => {
    document.getElementById('detail').replaceChildren();
    void render();
  });
  if (sessionStorage.getItem(TOKEN_KEY)) document.getElementById('forget').hidden = false;
  else showLogin();
  void render();
  setInterval(() => void render(), REFRESH_MS);
}

start();
