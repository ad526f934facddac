// Browser test of the voicetwin demo: Debian's Chromium, headless, driven by playwright-core through the main flow
// on tiny generated inputs. Run by tests/ui/run_browser_test.py (which makes the inputs and serves the app):
//   DEMO_URL=http://127.0.0.1:PORT INPUTS=out/ui-test/inputs SHOTS=out/ui-screenshots node tests/ui/demo.test.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const DEMO_URL = process.env.DEMO_URL || 'http://127.0.0.1:7860/';
const INPUTS = path.resolve(process.env.INPUTS || 'out/ui-test/inputs');
const SHOTS = path.resolve(process.env.SHOTS || 'out/ui-screenshots');
const BUILD_STEPS = process.env.BUILD_STEPS || '4';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const input = (name) => path.join(INPUTS, name);
fs.mkdirSync(SHOTS, { recursive: true });

const started = Date.now();
let page;
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${msg}`);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  log(`screenshot ${name}.png`);
}

async function openTab(name) {
  await page.getByRole('tab', { name }).click();
}

async function fill(id, value) {
  await page.locator(`#${id}`).getByRole('textbox').first().fill(value);
}

// The id of the job shown in panel `id` (null when none).
async function jobId(id) {
  return page.locator(`#${id} .vt-job`).getAttribute('data-job').catch(() => null);
}

// Click `button`, then wait for the new job shown in panel `id` to finish; returns the panel's text.
// Fails on an error unless `expectError`.
async function runJob(button, id, timeoutS, expectError = false) {
  const before = await jobId(id);
  await page.click(`#${button}`);
  const panel = page.locator(`#${id} .vt-job`);
  const deadline = Date.now() + timeoutS * 1000;
  let lastNote = '';
  for (;;) {
    const job = await jobId(id);
    const status = await panel.getAttribute('data-status').catch(() => null);
    const text = (await panel.innerText().catch(() => '')).replace(/\s+/g, ' ');
    const note = text.replace(/\d+ min \d+ s|\d+ s so far/, '');  // log changes of step or percentage only
    if (note !== lastNote) { log(`${id}: ${text}`); lastNote = note; }
    if (job && job !== before && status === 'done') {
      check(!expectError, `${id}: expected an error, the job finished`);
      return text;
    }
    if (job && job !== before && ['failed', 'interrupted', 'cancelled'].includes(status)) {
      if (expectError) return text;
      throw new Error(`${id}: the job ended with status ${status}: ${text}`);
    }
    if (Date.now() > deadline) throw new Error(`${id}: no result after ${timeoutS} s (last: ${text})`);
    await page.waitForTimeout(500);
  }
}

// The file an audio player offers for download (Gradio serves it from its cache), or null.
async function audioSource(id) {
  const link = page.locator(`#${id} a[data-testid=download-link]`).first();
  await link.waitFor({ state: 'attached', timeout: 15000 });
  return link.getAttribute('href');
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'voicetwin-ui-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  context.setDefaultTimeout(20000);
  page = await context.newPage();
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  const outside = new Set();  // the page must not call anything beyond this machine (fonts, analytics, CDNs)
  page.on('request', (r) => {
    const host = new URL(r.url()).hostname;
    if (!['127.0.0.1', 'localhost'].includes(host) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) {
      outside.add(r.url());
    }
  });
  try {
    await page.goto(DEMO_URL);
    await page.waitForSelector('#create-project');

    // 1. project & consent: a missing document is refused in plain words, then the project is created
    await fill('person-name', 'Ivan Petrov');
    await page.getByText('Their estate', { exact: true }).click();
    await fill('granted-by', 'Estate of Ivan Petrov');
    await fill('productions', 'The Last Letter');
    await fill('expires', '2099-12-31');
    await page.click('#create-project');
    await page.locator('#create-status').getByText('document reference').waitFor();
    log('missing document refused');
    await fill('document', 'contract 2025-114');
    await page.click('#create-project');
    await page.locator('#create-status').getByText('Project created').waitFor();
    await page.locator('#consent-summary').getByText('Estate of Ivan Petrov').waitFor();
    await shot('01-project-consent');

    // 2. archive: upload, ingest in the background, see kept and rejected clips, listen to one
    await openTab('2 · Archive');
    await page.locator('#archive-files input[type=file]').setInputFiles(input('archive/archive.wav'));
    const refs = fs.readdirSync(input('archive/references')).map((f) => input(`archive/references/${f}`));
    await page.locator('#reference-files input[type=file]').setInputFiles(refs);
    await page.waitForTimeout(1000);
    await runJob('start-ingest', 'ingest-progress', 150);
    await page.locator('#ingest-report').getByText('Kept').waitFor();
    const table = await page.locator('#clips-table').innerText();
    check(table.includes('kept') && table.includes('rejected'), 'the clips table lists kept and rejected clips');
    await page.locator('#clip-choice').getByRole('combobox').click();
    await page.getByRole('option').filter({ hasText: '✗' }).first().click();
    check(await audioSource('clip-audio'), 'a rejected clip is playable');
    await shot('02-archive-report');

    // 3. build the voice (few training steps: this checks the flow, not the quality)
    await openTab('3 · Build the voice');
    await page.getByText('Advanced settings').click();
    await page.locator('#steps input').fill(BUILD_STEPS);
    const building = runJob('start-build', 'build-progress', 300);
    // a screenshot while it runs, once a step of the build shows in the bar
    await page.locator('#build-progress .vt-job[data-status=running]').filter({ hasText: /analys|training/ })
      .waitFor({ timeout: 60000 }).catch(() => log('the build finished before its steps could be seen'));
    await shot('03a-build-progress');
    await building;
    await page.locator('#build-report').getByText('The voice is ready').waitFor();
    await shot('03-build-done');

    // the page can be reloaded: the project and the finished job come back from disk
    await page.reload();
    await page.waitForSelector('#create-project');
    await openTab('3 · Build the voice');
    await page.locator('#build-report').getByText('The voice is ready').waitFor({ timeout: 30000 });
    log('state survived a page reload');

    // 4. a performer's take, then a typed line, in the voice, next to the original
    await openTab('4 · Speak & sing');
    check(await page.locator('#production').getByRole('textbox').inputValue() === 'The Last Letter',
      'the production named in the consent is filled in');
    await page.locator('#take input[type=file]').setInputFiles(input('take.wav'));
    await page.waitForTimeout(1000);
    await runJob('start-render', 'render-progress', 180);
    check(await audioSource('original-audio'), 'the original is playable');
    check(await audioSource('result-audio'), 'the result is playable');
    await page.locator('#render-info').getByText('Watermark').waitFor();
    await shot('04a-take-converted');

    await page.getByText('Type a line', { exact: true }).click();
    await fill('line-text', 'Добрый вечер, друзья.');
    await page.locator('#rate input[type=number]').fill('1.2');
    await page.locator('#rate input[type=number]').press('Enter');
    await runJob('start-render', 'render-progress', 180);
    check(await audioSource('result-audio'), 'the spoken line is playable');
    await shot('04b-line-spoken');

    // singing is outside this consent's scope: refused with a message that says what is missing
    await page.getByText('Sing a song', { exact: true }).click();
    await page.locator('#song-file input[type=file]').setInputFiles(input('song.wav'));
    await page.waitForTimeout(1000);
    const refused = await runJob('start-render', 'render-progress', 120, true);
    check(/singing/.test(refused) && /scope/.test(refused), `singing refused for lack of consent: ${refused}`);
    check(!/Traceback/.test(refused), 'no traceback shown');
    await shot('04c-singing-refused');

    // the estate widens the consent to singing: the same song is then sung in the voice
    await openTab('1 · Project & consent');
    await page.getByText('Singing', { exact: true }).click();
    await page.click('#update-consent');
    await page.locator('#create-status').getByText('Consent updated').waitFor();
    await page.locator('#consent-summary').getByText('speech and singing').waitFor();
    await openTab('4 · Speak & sing');
    await runJob('start-render', 'render-progress', 180);
    check(await audioSource('result-audio'), 'the song in the voice is playable');
    await shot('04d-song-sung');

    // 5. lip-sync a face clip to the latest render (the spoken line)
    await openTab('5 · Lip-sync');
    await page.locator('#lipsync-video input[type=file]').setInputFiles(input('face.mp4'));
    await page.waitForTimeout(1000);
    await runJob('start-lipsync', 'lipsync-progress', 180);
    await page.locator('#lipsync-result video').waitFor({ state: 'attached', timeout: 15000 });
    await shot('05-lipsync');

    // 6. dub a one-line scene and get the deliverables
    await openTab('6 · Dub a scene');
    await page.locator('#scene-files input[type=file]').setInputFiles([input('scene/scene.yaml'), input('scene/line1.wav')]);
    await page.waitForTimeout(1000);
    await runJob('start-scene', 'scene-progress', 240);
    const deliverables = await page.locator('#scene-deliverables').innerText();
    check(deliverables.includes('mix.wav'), `the deliverables include mix.wav: ${deliverables}`);
    await shot('06-scene-deliverables');

    check(consoleErrors.length === 0, `no page errors: ${consoleErrors.join(' | ')}`);
    check(outside.size === 0, `no requests beyond this machine: ${[...outside].join(' ')}`);
    log('browser test passed');
  } catch (err) {
    await shot('failure').catch(() => {});
    throw err;
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
