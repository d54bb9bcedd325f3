// Browser tests of PatchPilot's web UI, in Debian's chromium through playwright-core.
//
// Started by `tests/web_ui.rs`, which serves the real router and worker against the fake
// GitHub, the scripted model and a real git server, and passes what it set up here:
//   PATCHPILOT_URL        the server
//   PATCHPILOT_API_TOKEN  the operator token (used to sign in through the form)
//   REPO_URL              an http clone URL of a failing Python project
//   MISSING_REPO_URL      an http clone URL that does not exist (a session that fails)
//   REPRO                 the reproduction command
//   PR_SESSION            a finished GitHub session that opened a pull request
//   PR_REPOSITORY         its owner/name; PR_ISSUE its issue number
//   ARTIFACTS             where screenshots go
// Every check throws with a sentence; the process exits non-zero on the first failure.

import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
// The browser talks to the server through a TCP proxy, so the test can drop live connections
// the way a flaky network or a restarted load balancer does.
const upstream = new URL(env('PATCHPILOT_URL'));
const sockets = new Set();
const proxy = net.createServer((client) => {
  const server = net.connect(Number(upstream.port), upstream.hostname);
  for (const s of [client, server]) {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  }
  client.pipe(server);
  server.pipe(client);
});
await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${proxy.address().port}`;
const dropConnections = () => { for (const s of sockets) s.destroy(); };
const artifacts = env('ARTIFACTS');
mkdirSync(artifacts, { recursive: true });

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const results = [];
async function test(name, body) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('dialog', (dialog) => { errors.push(`unexpected dialog: ${dialog.message()}`); dialog.dismiss(); });
  try {
    await body(page);
    check(errors.length === 0, `script errors: ${errors.join('; ')}`);
    results.push(`ok   ${name}`);
  } catch (err) {
    await shot(page, `FAILED-${name.replace(/\W+/g, '-')}`).catch(() => {});
    results.push(`FAIL ${name}: ${err.message}`);
    console.log(results.join('\n'));
    await browser.close();
    process.exit(1);
  } finally {
    await context.close();
  }
}

async function signIn(page, next = '/sessions') {
  await page.goto(`${base}${next}`);
  check(page.url().includes('/signin'), `an anonymous visit to ${next} goes to sign-in, got ${page.url()}`);
  await page.fill('#token', 'not-the-token');
  await page.click('#signin-form button[type=submit]');
  check((await page.textContent('#token-error')).includes('not the API token'), 'a wrong token is refused');
  await page.fill('#token', env('PATCHPILOT_API_TOKEN'));
  await Promise.all([page.waitForURL(`${base}${next}`), page.click('#signin-form button[type=submit]')]);
}

const stepStates = (page) => page.$$eval('li.step', (items) =>
  items.map((li) => `${li.dataset.step}:${li.querySelector('.step-state').textContent}`).join(' '));

// Ids of the event lines in the step folds and "other events" (not the before/after copies).
const lineIds = (page) => page.$$eval('li.step pre.lines .line, #other .line', (spans) =>
  spans.map((s) => Number(s.dataset.id)));

async function startSession(page, fields) {
  await page.goto(`${base}/sessions/new`);
  for (const [name, value] of Object.entries(fields)) {
    await page.fill(`#${name}`, value);
  }
  await page.click('#start-form button[type=submit]');
}

await test('the start form names the wrong field', async (page) => {
  await signIn(page, '/sessions/new');
  await startSession(page, {
    repoUrl: 'ftp://example.com/repo.git',
    bugDescription: 'average() of an empty list raises',
    reproCommand: env('REPRO'),
  });
  check(await page.isVisible('.field.invalid #repoUrl'), 'the repository URL field is marked invalid');
  check((await page.textContent('#repoUrl-error')).includes('repoUrl must be an http(s) URL'), 'the error names repoUrl');
  check((await page.inputValue('#bugDescription')) === 'average() of an empty list raises', 'what was typed is kept');
  await page.fill('#repoUrl', env('REPO_URL'));
  await page.fill('#reproCommand', '   ');
  await page.click('#start-form button[type=submit]');
  check((await page.textContent('#reproCommand-error')).includes('reproCommand must not be empty'), 'the error names reproCommand');
  await shot(page, 'start-form-invalid');
});

let createdId = '';
await test('a session started in the form moves through its steps live and shows its diff', async (page) => {
  await signIn(page, '/sessions/new');
  let streams = 0;
  page.on('request', (request) => { if (request.url().includes('/events')) streams += 1; });
  await startSession(page, {
    repoUrl: env('REPO_URL'),
    bugDescription: 'average() of an empty list raises ZeroDivisionError <script>alert(1)</script>',
    reproCommand: env('REPRO'),
  });
  await page.waitForURL(/\/sessions\/[0-9a-f]{32}$/);
  createdId = page.url().split('/').pop();
  const firstStatus = await page.getAttribute('#session', 'data-status');
  check(['queued', 'running'].includes(firstStatus), `the new session is active when its page opens (${firstStatus})`);
  // Watch the page without reloading it: the step list must change while the session runs.
  const seen = [];
  let liveIds = [];
  let dropped = false;
  const deadline = Date.now() + 120000;
  while (Date.now() < deadline) {
    const status = await page.getAttribute('#session', 'data-status').catch(() => null);
    if (status && !['queued', 'running'].includes(status)) break;
    const ids = await lineIds(page).catch(() => null);
    if (ids) liveIds = ids;
    if (!dropped && ids && ids.length > 0) {
      // Drop the connection once, mid-session: the browser must reconnect with Last-Event-ID.
      dropped = true;
      dropConnections();
    }
    const states = await stepStates(page).catch(() => null);
    if (states && seen[seen.length - 1] !== states) {
      seen.push(states);
      if (seen.length === 2) await shot(page, 'session-running');
    }
    await page.waitForTimeout(50);
  }
  check(new Set(liveIds).size === liveIds.length, `no line was shown twice (${liveIds})`);
  check(streams >= 2, `the event stream reconnected after the drop (${streams} requests)`);
  check(seen.length >= 2, `the steps changed live at least once before the end (saw ${seen.length} states: ${seen.join(' | ')})`);
  check(seen.some((s) => s.includes(':running')), `a step was shown running (${seen.join(' | ')})`);
  await page.waitForSelector('#session[data-status=succeeded]', { timeout: 120000 });
  const finalIds = await lineIds(page);
  const lastLive = Math.max(0, ...liveIds);
  const lost = finalIds.filter((id) => id <= lastLive && !liveIds.includes(id));
  check(lost.length === 0, `no line was lost live: missing ${lost} (live ${liveIds})`);
  const states = await stepStates(page);
  for (const step of ['clone', 'reproduce', 'localise', 'patch', 'verify', 'publish']) {
    check(states.includes(`${step}:done`), `${step} is done at the end: ${states}`);
  }
  check((await page.textContent('#status')).trim() === 'succeeded', 'the badge says succeeded');
  const badgeColour = await page.$eval('#status', (el) => getComputedStyle(el).color);
  check(badgeColour === 'rgb(26, 127, 55)', `succeeded is green (${badgeColour})`);
  check((await page.textContent('#no-pr')).includes('No pull request'), 'a session without GitHub says there is no PR');
  check((await page.textContent('#diff .file-name')).trim() === 'calc.py', 'the diff names calc.py');
  check((await page.textContent('#diff pre.diff')).includes('+    if not values:'), 'the diff shows the added lines');
  check((await page.textContent('#before')).includes('ZeroDivisionError'), 'the failing output before the fix is shown');
  check((await page.textContent('#after-fix')).includes('passed'), 'the passing output after the fix is shown');
  check((await page.textContent('.description pre')).includes('<script>alert(1)</script>'), 'the description is shown as text');
  check(!(await page.$('.description script')), 'untrusted markup is not markup');
  const durations = await page.$$eval('li.state-done .step-duration', (els) => els.map((e) => e.textContent));
  check(durations.every((d) => / s$/.test(d)), `done steps show durations (${durations})`);
  await shot(page, 'session-succeeded');
});

await test('a GitHub session shows its pull request, model and tokens', async (page) => {
  // A public repository's session is readable without signing in.
  await page.goto(`${base}/sessions/${env('PR_SESSION')}`);
  const href = await page.getAttribute('#pr-link', 'href');
  check(/\/pull\/\d+$/.test(href), `the PR link points at the pull request (${href})`);
  check((await page.textContent('#model')).includes('claude-test'), 'the model is named');
  check(!(await page.textContent('#tokens')).startsWith('0 in'), 'tokens used are shown');
  check((await page.textContent('#diff .file-name')).trim() === 'calc.py', 'the diff is shown with its file name');
  await shot(page, 'session-pull-request');
});

let failedId = '';
await test('a failed session shows why it stopped and what to do', async (page) => {
  await signIn(page, '/sessions/new');
  await startSession(page, {
    repoUrl: env('MISSING_REPO_URL'),
    bugDescription: 'this repository does not exist',
    reproCommand: env('REPRO'),
  });
  await page.waitForURL(/\/sessions\/[0-9a-f]{32}$/);
  failedId = page.url().split('/').pop();
  await page.waitForSelector('#session[data-status=failed]', { timeout: 120000 });
  check((await page.textContent('#reason')).includes('could not clone'), `the reason is shown: ${await page.textContent('#reason')}`);
  check((await page.textContent('.remedy')).includes('What to do'), 'what to do is shown');
  const colour = await page.$eval('#status', (el) => getComputedStyle(el).color);
  check(colour === 'rgb(207, 34, 46)', `failed is red (${colour})`);
  check((await stepStates(page)).includes('clone:failed'), 'the clone step is marked failed');
  await shot(page, 'session-failed');
});

await test('the list is newest first and filters by status, repository and issue', async (page) => {
  await signIn(page, '/sessions');
  const ids = await page.$$eval('tr.session-row a', (as) => as.map((a) => a.getAttribute('href').split('/').pop()));
  check(ids[0] === failedId && ids[1] === createdId, `newest first (${ids})`);
  check(ids.includes(env('PR_SESSION')), 'the GitHub session is listed');

  await page.selectOption('select[name=status]', 'failed');
  await page.click('#filters button[type=submit]');
  const failed = await page.$$eval('tr.session-row', (rows) => rows.map((r) => r.dataset.status));
  check(failed.length >= 1 && failed.every((s) => s === 'failed'), `status filter (${failed})`);

  await page.goto(`${base}/sessions`);
  await page.fill('input[name=repository]', env('PR_REPOSITORY'));
  await page.fill('input[name=issue]', env('PR_ISSUE'));
  await page.click('#filters button[type=submit]');
  const rows = await page.$$eval('tr.session-row a', (as) => as.map((a) => a.getAttribute('href').split('/').pop()));
  check(rows.length === 1 && rows[0] === env('PR_SESSION'), `repository + issue filter (${rows})`);
  await page.fill('input[name=issue]', '999999');
  await page.click('#filters button[type=submit]');
  check(await page.isVisible('#empty'), 'no match says so');
  await page.goto(`${base}/sessions?repository=${encodeURIComponent(env('PR_REPOSITORY'))}`);
  await Promise.all([page.waitForURL(new RegExp(`/sessions/${env('PR_SESSION')}$`)), page.click('tr.session-row a')]);
  await shot(page, 'session-list-linked');
});

await test('a private session needs sign-in', async (page) => {
  const response = await page.goto(`${base}/sessions/${createdId}`);
  check(response.status() === 401, `an anonymous reader of an API session gets 401 (${response.status()})`);
  check(!(await page.content()).includes('calc.py'), 'nothing of the session leaks');
});

await browser.close();
proxy.close();
console.log(results.join('\n'));
