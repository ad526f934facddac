// Browser test of the voicetwin demo: Debian's Chromium, headless, driven by playwright-core on tiny generated inputs.
// A: open a voice built on disk, hear it say a line, dub a two-line scene written in the table. B: a new person's
// project, from consent through the archive and the build to a converted take and a lip-synced clip.
// Run by tests/ui/run_browser_test.py (which makes the inputs and serves the app):
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

// Listen to player `id`: the browser decodes the file it serves (its duration in seconds), and pressing Play moves
// the player's clock. Returns { src, duration }.
async function hear(id) {
  const src = await audioSource(id);
  const duration = await page.evaluate(async (url) => {
    const data = await (await fetch(url)).arrayBuffer();
    return (await new OfflineAudioContext(1, 1, 16000).decodeAudioData(data)).duration;
  }, src);
  await page.locator(`#${id} button[aria-label=Play]`).click();
  await page.locator(`#${id} button[aria-label=Pause]`).waitFor({ timeout: 5000 });
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent.trim() !== '0:00', `#${id} #time`,
    { timeout: 5000 });
  await page.locator(`#${id} button[aria-label=Pause]`).click().catch(() => {});  // it may have ended already
  return { src, duration };
}

// The tabs that cannot be opened yet.
async function disabledTabs() {
  const names = ['2 · Archive', '3 · Build the voice', '4 · Speak & sing', '5 · Lip-sync', '6 · Dub a scene'];
  const out = [];
  for (const name of names) if (await page.getByRole('tab', { name }).isDisabled()) out.push(name.slice(0, 1));
  return out.join('');
}

// Type `value` into cell (row, col) of the editable table `id`.
async function editCell(id, row, col, value) {
  const cell = page.locator(`#${id} [data-testid=cell-${row}-${col}]`);
  await cell.dblclick();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.type(value);
  await page.keyboard.press('Enter');
  await page.waitForTimeout(300);
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'voicetwin-ui-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
  context.setDefaultTimeout(60000);  // a busy 2-core machine can take 20 s to answer the first event
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
    await page.waitForSelector('#open-voice');

    // A. a producer opens a voice that is already built, hears it say a line, and dubs a scene with it
    await page.locator('#next-step').getByText('Start here').waitFor();
    check(await disabledTabs() === '23456', `no project: tabs 2-6 are disabled (disabled: ${await disabledTabs()})`);
    await shot('01-start');
    await page.locator('#open-path input').fill(input('voice'));
    await page.locator('#open-path input').press('Enter');
    await page.click('#open-voice');
    await page.locator('#open-status').getByText('Opened: Nikolai Orlov').waitFor({ state: 'attached' });  // tab 1, left for the Speak tab
    await page.locator('#consent-summary').getByText('Estate of Nikolai Orlov').waitFor();
    await page.locator('#next-step').getByText('the voice is ready').waitFor();
    await page.locator('#start-render').waitFor({ state: 'visible' });  // opened on the Speak tab
    check(await disabledTabs() === '', `a voice: every tab opens (disabled: ${await disabledTabs()})`);
    log('voice opened from disk');
    await shot('02-voice-opened');

    // a render that cannot start says why in the task's status panel (and nothing says "starting")
    await page.locator('#line-text').waitFor({ state: 'visible' });  // ready for a typed line
    await page.click('#start-render');
    const refusal = page.locator('#render-progress .vt-job[data-status=refused]');
    await refusal.getByText('type the line').waitFor();
    check(!/starting/.test(await page.locator('#render-progress').innerText()), 'a refusal does not say starting');

    await fill('line-text', 'Добрый вечер, друзья.');
    check(await page.locator('#production').getByRole('textbox').inputValue() === 'The Last Letter',
      'the production named in the consent is filled in');
    await runJob('start-render', 'render-progress', 180);
    const spoken = await hear('result-audio');
    check(spoken.duration > 0.5, `the spoken line can be heard: ${JSON.stringify(spoken)}`);
    const base = await hear('original-audio');
    check(base.duration > 0.5, `the base voice's rendition can be heard: ${JSON.stringify(base)}`);
    await page.locator('#render-info').getByText('Watermark').waitFor();
    log(`spoken line: ${spoken.duration.toFixed(2)} s`);
    await shot('03-line-spoken');

    // singing is outside this consent's scope: the job stops with the reason, shown in the same panel
    await page.getByText('Sing a song', { exact: true }).click();
    await page.locator('#song-file input[type=file]').setInputFiles(input('song.wav'));
    await page.waitForTimeout(1000);
    const failed = await runJob('start-render', 'render-progress', 120, true);
    check(/singing/.test(failed) && /scope/.test(failed), `singing refused for lack of consent: ${failed}`);
    check(!/starting|Traceback/.test(failed), `a failed render shows its error only: ${failed}`);
    await shot('04-singing-refused');

    // dub a two-line scene written in the table
    await openTab('6 · Dub a scene');
    check(await page.locator('#scene-production').getByRole('textbox').inputValue() === 'The Last Letter',
      'the scene production is filled in from the consent');
    await editCell('scene-lines', 0, 4, 'Здравствуйте.');
    await page.click('#scene-add-line');
    await page.locator('#scene-lines [data-testid=cell-1-0]').waitFor();
    await editCell('scene-lines', 1, 4, 'Как вы поживаете?');
    await page.getByText('The scene file (YAML)').click();
    await page.locator('#scene-yaml').getByText('Как вы поживаете').waitFor();
    const yaml = await page.locator('#scene-yaml').innerText();
    check(/NIKOLAI/.test(yaml) && /voice: voice/.test(yaml) && /Здравствуйте/.test(yaml) && /production: The Last Letter/.test(yaml),
      `the YAML follows the table: ${yaml}`);
    await shot('05-scene-table');
    await runJob('start-scene', 'scene-progress', 240);
    await page.locator('#scene-report').getByText('2 line(s) dubbed').waitFor();
    const deliverables = await page.locator('#scene-deliverables').innerText();
    check(deliverables.includes('mix.wav'), `the deliverables include mix.wav: ${deliverables}`);
    await shot('06-scene-dubbed');
    // a scene file uploaded with its media fills the table (the YAML route stays)
    await page.locator('#scene-files input[type=file]').setInputFiles([input('scene/scene.yaml'), input('scene/line1.wav')]);
    await page.locator('#scene-lines [data-testid=cell-0-5]').getByText('line1.wav').waitFor();
    check(await page.locator('#scene-lines [data-testid=cell-1-0]').count() === 0, 'the uploaded scene has one line');
    await page.locator('#scene-yaml').getByText('recording: line1.wav').waitFor();
    log('an uploaded scene file filled the table');

    // B. a new person: create the project, process the archive, build the voice, convert a take, lip-sync
    await openTab('1 · Project & consent');
    await fill('person-name', 'Ivan Petrov');
    await fill('document', '');  // the form shows the open project's record: this is a new one
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
    await page.locator('#create-status').getByText('Next: upload').waitFor();
    await page.locator('#consent-summary').getByText('Estate of Ivan Petrov').waitFor();
    await page.locator('#next-step').getByText('2 · Archive').waitFor();
    check(await disabledTabs() === '46', `a project without a voice: speak and dub wait (disabled: ${await disabledTabs()})`);
    await shot('07-project-created');

    await openTab('3 · Build the voice');
    check(await page.locator('#start-build').isDisabled(), 'nothing to build before the archive is processed');
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
    await shot('08-archive-report');

    await openTab('3 · Build the voice');
    await page.locator('#start-build:not([disabled])').waitFor();
    await page.getByText('Advanced settings').click();
    await page.locator('#steps input').fill(BUILD_STEPS);
    const building = runJob('start-build', 'build-progress', 300);
    await page.locator('#build-progress .vt-job[data-status=running]').filter({ hasText: /analys|training/ })
      .waitFor({ timeout: 60000 }).catch(() => log('the build finished before its steps could be seen'));
    await shot('09-build-progress');
    await building;
    await page.locator('#build-report').getByText('The voice is ready').waitFor();

    // the page can be reloaded: the project and the finished job come back from disk
    await page.reload();
    await page.waitForSelector('#create-project');
    await openTab('3 · Build the voice');
    await page.locator('#build-report').getByText('The voice is ready').waitFor({ timeout: 30000 });
    log('state survived a page reload');

    await openTab('4 · Speak & sing');
    await page.locator('#take input[type=file]').setInputFiles(input('take.wav'));
    await page.waitForTimeout(1000);
    await runJob('start-render', 'render-progress', 180);
    const converted = await hear('result-audio');
    check(converted.duration > 0.5, `the converted take can be heard: ${JSON.stringify(converted)}`);
    await shot('10-take-converted');

    await openTab('5 · Lip-sync');
    await page.locator('#lipsync-video input[type=file]').setInputFiles(input('face.mp4'));
    await page.waitForTimeout(1000);
    await runJob('start-lipsync', 'lipsync-progress', 180);
    await page.locator('#lipsync-result video').waitFor({ state: 'attached', timeout: 15000 });
    await shot('11-lipsync');

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
