// Keeps a running session's page current over its event stream (Server-Sent Events).
//
// The page is rendered by the server up to event `data-after`; the stream starts there. When
// the connection drops, EventSource reconnects by itself and sends `Last-Event-ID`, and the
// server resumes after it; events with an id we already showed are dropped, so no line is lost
// or repeated. Step states follow the rules of `src/server/pages/steps.rs`. When the session
// ends the page reloads once, to show the server-rendered outcome (PR, diff, reason).
'use strict';

(function () {
  const root = document.getElementById('session');
  if (!root) return;
  const active = ['queued', 'running'];
  if (!active.includes(root.dataset.status)) return;

  let lastId = Number(root.dataset.after) || 0;
  const steps = new Map();
  for (const li of document.querySelectorAll('li.step')) {
    steps.set(li.dataset.step, li);
  }
  const outputs = { reproduce: document.getElementById('before'), verify: document.getElementById('after-fix') };

  function line(ev) {
    const span = document.createElement('span');
    span.className = 'line level-' + ev.level;
    span.dataset.id = String(ev.id);
    span.textContent = ev.message; // never innerHTML: the text is untrusted
    return span;
  }

  function seconds(ms) {
    ms = Math.max(0, ms);
    if (ms < 10000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 60000) return Math.floor(ms / 1000) + ' s';
    const s = Math.floor(ms / 1000) % 60;
    return Math.floor(ms / 60000) + ' min ' + String(s).padStart(2, '0') + ' s';
  }

  function setState(li, state) {
    li.className = 'step state-' + state;
    li.querySelector('.step-state').textContent = state;
    const details = li.querySelector('details');
    if (state === 'running' || state === 'failed') details.open = true;
    if (state === 'done' || state === 'skipped') details.open = false;
    if (state === 'running') {
      const current = document.getElementById('current-step');
      if (current) current.textContent = li.querySelector('.step-label').textContent;
    }
  }

  function duration(li) {
    const first = Number(li.dataset.first);
    if (!first) return;
    const end = li.classList.contains('state-running') ? Date.now() : Number(li.dataset.last);
    li.querySelector('.step-duration').textContent = seconds(end - first);
  }

  function apply(ev) {
    if (ev.id <= lastId) return; // already shown (a resumed stream, or the server render)
    lastId = ev.id;
    const li = steps.get(ev.step);
    if (!li) {
      document.getElementById('other').appendChild(line(ev));
      return;
    }
    const at = Date.parse(ev.at);
    for (const other of steps.values()) {
      if (other !== li && other.classList.contains('state-running')) {
        other.dataset.last = String(at); // it ended when this step began
        setState(other, 'done');
        duration(other);
      }
    }
    if (!Number(li.dataset.first)) li.dataset.first = String(at);
    li.dataset.last = String(at);
    li.querySelector('pre.lines').appendChild(line(ev));
    let state = 'running';
    if (ev.level === 'error') state = 'failed';
    else if (ev.message.startsWith('skipped:')) state = 'skipped';
    else if (li.classList.contains('state-failed')) state = 'failed';
    setState(li, state);
    duration(li);
    if (ev.level === 'output' && outputs[ev.step]) outputs[ev.step].appendChild(line(ev));
  }

  const titles = { queued: 'Waiting for a worker', running: 'Running' };

  function showStatus(s) {
    const badge = document.getElementById('status');
    badge.textContent = s.status;
    badge.className = 'badge status-' + s.status;
    const outcome = document.getElementById('outcome');
    outcome.className = 'outcome status-' + s.status;
    if (titles[s.status]) outcome.querySelector('.outcome-title').textContent = titles[s.status];
    root.dataset.status = s.status;
    document.getElementById('tokens').textContent = s.inputTokens + ' in, ' + s.outputTokens + ' out';
    document.getElementById('attempts').textContent = String(s.attemptCount);
  }

  const source = new EventSource(root.dataset.events);
  source.addEventListener('log', (e) => apply(JSON.parse(e.data)));
  source.addEventListener('session', (e) => {
    const s = JSON.parse(e.data);
    showStatus(s);
    if (!active.includes(s.status)) {
      source.close();
      window.location.reload();
    }
  });
  setInterval(() => {
    for (const li of steps.values()) if (li.classList.contains('state-running')) duration(li);
  }, 1000);
})();
