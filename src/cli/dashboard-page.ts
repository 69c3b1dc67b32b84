/**
 * The dashboard's single page: static HTML, CSS and a small script that polls
 * `/api/snapshot` every second. Everything read from Redis is untrusted (a
 * method name, a reason, a consumer name can be anything): the script only
 * ever sets `textContent`, never HTML.
 *
 * @module
 */

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; background: #fafafa; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
.sub { color: #666; margin-bottom: 1rem; }
.cards { display: flex; flex-wrap: wrap; gap: .6rem; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5rem .8rem; min-width: 8rem; }
.card .v { font-size: 1.4rem; font-variant-numeric: tabular-nums; } .card .k { color: #666; font-size: .8rem; }
table { border-collapse: collapse; background: #fff; min-width: 40rem; }
th, td { border-bottom: 1px solid #eee; padding: .3rem .6rem; text-align: left; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; font-weight: 600; } .dead { color: #b00020; } .alive { color: #0a7d32; }
button { cursor: pointer; } #message { margin: .6rem 0; min-height: 1.2rem; } .empty { color: #888; }
`;

const SCRIPT = `
const token = document.body.dataset.token;
const $ = (id) => document.getElementById(id);
function ms(v) { if (v === null || v === undefined) return '-'; if (v < 1000) return Math.round(v) + ' ms'; if (v < 60000) return (v / 1000).toFixed(1) + ' s'; return Math.floor(v / 60000) + ' min'; }
function cell(tr, text, cls) { const td = document.createElement('td'); td.textContent = String(text); if (cls) td.className = cls; tr.appendChild(td); return td; }
function rows(tbodyId, items, fill, emptyText, columns) {
  const tbody = $(tbodyId); tbody.replaceChildren();
  if (items.length === 0) { const tr = document.createElement('tr'); const td = cell(tr, emptyText, 'empty'); td.colSpan = columns; tbody.appendChild(tr); return; }
  for (const item of items) { const tr = document.createElement('tr'); fill(tr, item); tbody.appendChild(tr); }
}
function set(id, text) { $(id).textContent = String(text); }
async function redrive(ids) {
  set('message', 'Redriving...');
  try {
    const res = await fetch('/api/redrive', { method: 'POST', headers: { 'content-type': 'application/json', 'x-dashboard-token': token }, body: JSON.stringify({ ids }) });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
    set('message', 'Redrove ' + body.redriven.length + ' dead letter(s)' + (body.notFound.length ? ', ' + body.notFound.length + ' not found' : '') + '.');
  } catch (err) { set('message', 'Redrive failed: ' + err.message); }
  await refresh();
}
async function refresh() {
  let snap;
  try { snap = await (await fetch('/api/snapshot')).json(); } catch (err) { set('state', 'dashboard unreachable: ' + err.message); return; }
  const t = snap.traffic, s = snap.status;
  set('state', s ? 'updated ' + new Date(s.time).toISOString().slice(11, 19) + ' UTC' : (snap.statusError ? snap.statusError.message : ''));
  set('calls-per-sec', t.callsPerSec); set('answers-per-sec', t.answersPerSec); set('errors-per-sec', t.errorsPerSec);
  set('latency', ms(t.latencyMs.p50) + ' / ' + ms(t.latencyMs.p95)); set('in-flight', t.inFlight);
  const groups = s ? s.groups : [];
  set('pending', groups.reduce((n, g) => n + g.pending, 0));
  set('lag', groups.reduce((n, g) => n + (g.lag || 0), 0));
  set('dead-count', s ? s.deadLetters.count : snap.deadLetters.length);
  set('length', s ? s.stream.length : '-');
  rows('groups', groups, (tr, g) => { cell(tr, g.name); cell(tr, g.consumers.length); cell(tr, g.pending); cell(tr, g.lag === null ? '?' : g.lag); cell(tr, ms(g.oldestPendingAgeMs)); }, 'No consumer group', 5);
  const consumers = groups.flatMap((g) => g.consumers.map((c) => ({ g: g.name, c })));
  rows('consumers', consumers, (tr, x) => {
    tr.dataset.consumer = x.c.name;
    cell(tr, x.c.name); cell(tr, x.g); cell(tr, x.c.pending);
    cell(tr, x.c.sessionId === null ? '-' : (t.answersBy[x.c.sessionId] || 0));
    cell(tr, ms(x.c.idleMs)); cell(tr, x.c.alive ? 'alive' : 'gone', x.c.alive ? 'alive' : 'dead');
  }, 'No consumer yet', 6);
  rows('dead-letters', snap.deadLetters, (tr, d) => {
    tr.dataset.id = d.id;
    cell(tr, d.id); cell(tr, d.requests.map((r) => r.method).join(', ') || '-');
    cell(tr, (d.caller || '-') + (d.caller ? (d.callerAlive ? ' (waiting)' : ' (gone)') : ''));
    cell(tr, d.deliveries === null ? '-' : d.deliveries); cell(tr, d.reason || '-');
    const b = document.createElement('button'); b.className = 'redrive'; b.textContent = 'Redrive'; b.onclick = () => redrive([d.id]);
    cell(tr, '').appendChild(b);
  }, 'No dead letters', 6);
  $('redrive-all').disabled = snap.deadLetters.length === 0;
}
$('redrive-all').onclick = () => redrive('all');
refresh(); setInterval(refresh, 1000);
`;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page for `stream`, carrying the token redrives must send back. */
export function dashboardPage(stream: string, token: string): string {
  const card = (id: string, label: string): string => `<div class="card"><div class="v" id="${id}">-</div><div class="k">${label}</div></div>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>redis-streams-rpc: ${escapeHtml(stream)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>
<body data-token="${escapeHtml(token)}">
<h1>redis-streams-rpc <span id="stream">${escapeHtml(stream)}</span></h1><div class="sub" id="state">loading...</div>
<div class="cards">${card('calls-per-sec', 'calls/s')}${card('answers-per-sec', 'answers/s')}${card('errors-per-sec', 'errors/s')}${card('latency', 'latency p50 / p95')}${card('in-flight', 'in flight')}${card('pending', 'pending')}${card('lag', 'lag')}${card('dead-count', 'dead letters')}${card('length', 'stream entries')}</div>
<h2>Groups</h2><table><thead><tr><th>Group</th><th>Consumers</th><th>Pending</th><th>Lag</th><th>Oldest pending</th></tr></thead><tbody id="groups"></tbody></table>
<h2>Consumers</h2><table><thead><tr><th>Consumer</th><th>Group</th><th>Pending</th><th>Answers (10 s)</th><th>Idle</th><th>State</th></tr></thead><tbody id="consumers"></tbody></table>
<h2>Dead letters <button id="redrive-all">Redrive all</button></h2><div id="message"></div>
<table><thead><tr><th>Id</th><th>Method</th><th>Caller</th><th>Deliveries</th><th>Reason</th><th></th></tr></thead><tbody id="dead-letters"></tbody></table>
<script>${SCRIPT}</script></body></html>
`;
}
