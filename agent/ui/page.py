"""The live page's HTML and script: two pages (the campaign list, one campaign), rendered in the
browser from the JSON the server pushes (Server-Sent Events). Kept as Python strings so an installed
wheel carries them without package-data configuration."""

from __future__ import annotations

import html

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: bold; } .met { color: #1a7f37; } .unmet { color: #b35900; }
.proposal { border: 1px solid #c9a000; background: #fffbe6; padding: .6em; margin: .5em 0; max-width: 60em; }
.proposal label { margin-right: 1em; } .proposal input[type=text] { width: 7em; }
.proposal input.reason { width: 20em; } .message { color: #b00020; margin-left: 1em; }
#answer { border: 2px solid #1a7f37; padding: .6em; max-width: 60em; background: #f0fff4; }
#figures img { max-width: 48%; margin: .3em; border: 1px solid #eee; }
.muted { color: #777; } #flash { color: #b00020; }
"""

LIST_SCRIPT = """
const rows = document.getElementById('campaigns');
function render(list) {
  rows.innerHTML = '';
  for (const c of list) {
    const tr = document.createElement('tr');
    const link = `<a href="campaigns/${encodeURIComponent(c.campaign_id)}">${esc(c.campaign_id)}</a>`;
    tr.innerHTML = `<td>${link}</td><td class="status">${esc(c.status)}</td>` +
      `<td class="num">${c.awaiting_approval || ''}</td><td>${esc(c.stop_reason || '')}</td>`;
    rows.appendChild(tr);
  }
  document.getElementById('empty').hidden = list.length > 0;
}
function esc(s) { return String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c])); }
const source = new EventSource('api/campaigns/stream');
source.addEventListener('campaigns', e => render(JSON.parse(e.data)));
"""

CAMPAIGN_SCRIPT = """
const CID = document.body.dataset.campaign;
const API = '../api';
const userBox = document.getElementById('user');
userBox.value = localStorage.getItem('labpilot-user') || '';
userBox.addEventListener('change', () => localStorage.setItem('labpilot-user', userBox.value));
function esc(s) { return String(s ?? '').replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c])); }
function num(v) { return (typeof v === 'number') ? (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : +v.toPrecision(4)) : esc(v ?? '—'); }
function params(p) { return Object.entries(p || {}).map(([k, v]) => `${esc(k)}=${num(v)}`).join(', '); }
function estimate(e) { return e.value === null ? '—' : `${num(e.value)}${e.sigma !== null ? ' ± ' + num(e.sigma) : ''} ${esc(e.units || '')}`; }

function renderHeader(s) {
  document.getElementById('status').textContent = s.status;
  document.getElementById('stop-reason').textContent = s.stop_reason || '';
  document.getElementById('mode').textContent = s.approval_mode;
  document.getElementById('counts').textContent = Object.entries(s.counts).map(([k, v]) => `${k}: ${v}`).join(', ');
}
function renderTargets(s) {
  const body = document.getElementById('targets');
  body.innerHTML = Object.entries(s.targets).map(([name, t]) =>
    `<tr data-target="${esc(name)}"><td>${esc(name)}</td><td class="num value">${num(t.value)}</td><td class="num">${num(t.goal)}</td>` +
    `<td class="${t.met ? 'met' : 'unmet'}">${t.met ? 'met ✓' : 'not yet'}</td></tr>`).join('') ||
    '<tr><td colspan="4" class="muted">no evaluation yet</td></tr>';
  document.getElementById('budgets').innerHTML = s.budgets.map(b =>
    `<tr data-budget="${esc(b.name)}"><td>${esc(b.name)}</td><td class="num used">${num(b.used)}</td>` +
    `<td class="num">${b.limit === null ? '—' : num(b.limit)}</td><td>${esc(b.units)}</td></tr>`).join('');
}
function proposalNode(p) {
  const div = document.createElement('div');
  div.className = 'proposal'; div.dataset.attempt = p.attempt_id;
  const inputs = p.parameters.map(q => {
    const range = q.choices ? q.choices.join(' | ') : `${q.low} … ${q.high}`;
    return `<label title="${esc(range)} ${esc(q.units)}">${esc(q.name)} <input type="text" name="${esc(q.name)}" ` +
      `data-original="${esc(q.value)}" value="${esc(q.value)}"> ${esc(q.units)}</label>`;
  }).join('');
  div.innerHTML = `<div><b>${esc(p.attempt_id)}</b> <span class="muted">${esc(p.why || '')}</span></div>` +
    `<div class="params">${inputs}</div><div>` +
    `<button class="approve">Approve</button> <button class="edit">Approve as edited</button> ` +
    `<input class="reason" type="text" placeholder="reason for rejecting"> <button class="reject">Reject</button>` +
    `<span class="message"></span></div>`;
  div.querySelector('.approve').onclick = () => decide(div, 'approve', {edits: {}});
  div.querySelector('.edit').onclick = () => {
    const edits = {};
    div.querySelectorAll('.params input').forEach(i => { if (i.value !== i.dataset.original) edits[i.name] = i.value; });
    decide(div, 'approve', {edits});
  };
  div.querySelector('.reject').onclick = () => decide(div, 'reject', {reason: div.querySelector('.reason').value});
  return div;
}
async function decide(div, action, body) {
  body.user = userBox.value || null;
  const message = div.querySelector('.message');
  message.textContent = '…';
  const r = await fetch(`${API}/attempts/${encodeURIComponent(div.dataset.attempt)}/${action}`,
    {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const answer = await r.json().catch(() => ({detail: r.statusText}));
  message.textContent = r.ok ? `${answer.verdict} by ${answer.user}` : (answer.detail || r.statusText);
  if (r.ok) div.classList.add('decided');
}
function renderPending(s) {
  const box = document.getElementById('pending');
  const wanted = new Set(s.pending.map(p => p.attempt_id));
  box.querySelectorAll('.proposal').forEach(d => { if (!wanted.has(d.dataset.attempt)) d.remove(); });
  for (const p of s.pending) {  // kept, not redrawn: what a person is typing survives an update
    if (!box.querySelector(`.proposal[data-attempt="${CSS.escape(p.attempt_id)}"]`)) box.appendChild(proposalNode(p));
  }
  document.getElementById('no-pending').hidden = s.pending.length > 0;
}
function renderFigures(s) {
  const box = document.getElementById('figures');
  const key = JSON.stringify(s.mark);
  if (box.dataset.mark === key) return;
  box.dataset.mark = key;
  box.innerHTML = s.figures.map(f => `<img alt="${esc(f.alt)}" src="${esc(f.url)}">`).join('') ||
    '<p class="muted">no data yet</p>';
}
function renderLog(s) {
  document.getElementById('log').innerHTML = s.log.map(r => {
    const person = r.approval ? `${r.approval.verdict} by ${r.approval.user}${r.approval.reason ? ': ' + r.approval.reason : ''}` : '';
    const est = Object.entries(r.estimates).slice(0, 3).map(([k, e]) => `${esc(k)} ${estimate(e)}`).join('; ');
    return `<tr data-attempt="${esc(r.attempt_id)}"><td class="num">${r.seq}</td><td>${esc(r.state)}</td>` +
      `<td>${params(r.params)}</td><td title="${esc(JSON.stringify(r.reason))}">${esc(r.why)}</td>` +
      `<td>${esc(person)}</td><td>${esc(r.state === 'refused' || r.state === 'failed' ? r.refusal : '')}</td>` +
      `<td>${est}</td><td>${esc(r.flags.join(', '))}</td></tr>`;
  }).join('');
}
function renderAnswer(s) {
  const box = document.getElementById('answer');
  box.hidden = !s.answer;
  if (!s.answer) return;
  const rows = Object.entries(s.answer.estimates).map(([k, e]) => `<tr><td>${esc(k)}</td><td class="num">${estimate(e)}</td></tr>`).join('');
  const said = (s.answer.lines || []).map(l => `<p class="answer-line">${esc(l)}</p>`).join('');
  box.innerHTML = `<h2>Answer</h2>${said}<p><b class="answer-status">${esc(s.answer.status)}</b>: ` +
    `<span class="answer-reason">${esc(s.answer.stop_reason)}</span></p>` +
    (rows ? `<p>Estimates (${esc(s.answer.attempt_id)}):</p><table>${rows}</table>` : '<p>no valid interpretation</p>');
}
function render(s) {
  renderHeader(s); renderTargets(s); renderPending(s); renderFigures(s); renderLog(s); renderAnswer(s);
  document.body.dataset.mark = JSON.stringify(s.mark);
}
const source = new EventSource(`${API}/campaigns/${encodeURIComponent(CID)}/stream`);
source.addEventListener('state', e => render(JSON.parse(e.data)));
source.addEventListener('error', () => { document.getElementById('flash').textContent = 'connection lost; retrying…'; });
source.addEventListener('open', () => { document.getElementById('flash').textContent = ''; });
"""


def _page(title: str, body: str, script: str, *, attributes: str = "") -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body{attributes}>{body}<script>{script}</script></body></html>")


def list_page() -> str:
    body = ("<h1>labpilot campaigns</h1><table><thead><tr><th>campaign</th><th>status</th><th>awaiting approval</th>"
            "<th>stop reason</th></tr></thead><tbody id='campaigns'></tbody></table>"
            "<p id='empty' class='muted' hidden>no campaigns in this store yet</p>")
    return _page("labpilot", body, LIST_SCRIPT)


def campaign_page(campaign_id: str) -> str:
    cid = html.escape(campaign_id)
    body = f"""
<p><a href="../">all campaigns</a> <span id="flash"></span></p>
<h1>{cid}</h1>
<p>status: <span id="status" class="status">…</span> <span id="stop-reason"></span> · approval: <span id="mode"></span>
 · attempts: <span id="counts"></span></p>
<section id="answer" hidden></section>
<h2>Targets and budgets</h2>
<table><thead><tr><th>target</th><th>value</th><th>goal</th><th></th></tr></thead><tbody id="targets"></tbody></table>
<table><thead><tr><th>budget</th><th>used</th><th>limit</th><th></th></tr></thead><tbody id="budgets"></tbody></table>
<h2>Awaiting approval</h2>
<p>your name: <input id="user" type="text" placeholder="recorded with each decision"></p>
<div id="pending"></div><p id="no-pending" class="muted">nothing awaits approval</p>
<h2>Latest data</h2><div id="figures"></div>
<h2>Decision log</h2>
<table><thead><tr><th>seq</th><th>state</th><th>parameters</th><th>why (policy)</th><th>person</th><th>refusal / failure</th>
<th>estimates</th><th>flags</th></tr></thead><tbody id="log"></tbody></table>
"""
    return _page(f"labpilot · {campaign_id}", body, CAMPAIGN_SCRIPT, attributes=f' data-campaign="{cid}"')
