// Drives the demo page (service/web) in headless Debian Chromium against the
// real daemon: draws digits with mouse and touch strokes, picks a real MNIST
// PNG, checks the predicted class, the ten bars and whiskers, that the page
// shows exactly the numbers the API returns for the same PNG and seed, and
// that errors read well. Saves a screenshot.
//
//   node tests/browser/demo.test.mjs --url http://127.0.0.1:PORT/ \
//        --screenshot build/test-logs/demo.png --png digit.png --label 7
//
// Prints "ok - name" / "not ok - name: why" per scenario and, last, one JSON
// line {"results": {name: "ok" | message}}; exit status 0 only if all passed.
// tests/integration/test_browser.py starts the daemon and runs this.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

function parseArgs(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) {
      throw new Error(`usage: demo.test.mjs --url URL --screenshot FILE --png FILE --label N (bad '${argv[i]}')`);
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['url', 'screenshot', 'png', 'label']) {
    if (!out[k]) throw new Error(`demo.test.mjs: error: --${k} is required`);
  }
  return out;
}

const args = parseArgs(process.argv);
const base = new URL(args.url);
const CHROMIUM_ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

// Strokes in pad coordinates (0..280), the way a person draws the digit:
// each stroke is a list of points. Chosen to look like MNIST digits once the
// daemon scales the ink's bounding box to 20x20.
const STROKES = {
  7: [[[85, 70], [200, 70], [190, 95], [165, 145], [145, 195], [130, 235]]],
  1: [[[150, 45], [147, 100], [143, 160], [140, 235]]],
  // A 7 whose top bar is barely there: between a 1 and a 7.
  '7or1': [[[135, 60], [165, 60], [158, 120], [150, 180], [146, 235]]],
  0: [[[140, 50], [105, 65], [88, 110], [88, 170], [105, 215], [140, 232], [175, 215],
    [193, 170], [193, 110], [176, 65], [140, 50]]],
};

// Intermediate points so pointermove events arrive like a real hand's.
function densify(points, step = 6) {
  const out = [points[0]];
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1];
    const [x1, y1] = points[i];
    const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / step));
    for (let k = 1; k <= n; k++) out.push([x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n]);
  }
  return out;
}

async function padBox(page) {
  const box = await page.locator('[data-testid=pad]').boundingBox();
  assert.ok(box && box.width > 100, `pad not visible: ${JSON.stringify(box)}`);
  // Pad coordinates are canvas pixels (280); the pad may be shown smaller.
  return { x: box.x, y: box.y, s: box.width / 280 };
}

async function drawWithMouse(page, digit) {
  const b = await padBox(page);
  for (const stroke of STROKES[digit]) {
    const pts = densify(stroke);
    await page.mouse.move(b.x + pts[0][0] * b.s, b.y + pts[0][1] * b.s);
    await page.mouse.down();
    for (const [x, y] of pts.slice(1)) await page.mouse.move(b.x + x * b.s, b.y + y * b.s);
    await page.mouse.up();
  }
}

// Real touch events through the DevTools protocol (Playwright's touchscreen
// only taps): touchStart, touchMoves, touchEnd become pointer events of
// pointerType "touch" in the page.
async function drawWithTouch(page, cdp, digit) {
  const b = await padBox(page);
  for (const stroke of STROKES[digit]) {
    const pts = densify(stroke).map(([x, y]) => ({ x: b.x + x * b.s, y: b.y + y * b.s }));
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [pts[0]] });
    for (const p of pts.slice(1)) await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [p] });
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  }
}

async function inkFraction(page) {
  return page.evaluate(() => {
    const c = document.getElementById('pad');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 128) ink++;
    return ink / (c.width * c.height);
  });
}

async function setParams(page, { samples = '200', interval = '0.95', seed = '' } = {}) {
  await page.fill('[data-testid=samples]', samples);
  await page.fill('[data-testid=interval]', interval);
  await page.fill('[data-testid=seed]', seed);
}

// Presses Predict and waits for the answer; returns the request the page
// sent (query and PNG body) and the API's JSON as the page received it.
async function predict(page, trigger) {
  await page.evaluate(() => { window.__sent = []; });
  const [req, resp] = await Promise.all([
    page.waitForRequest((r) => r.url().includes('/predict') && r.method() === 'POST'),
    page.waitForResponse((r) => r.url().includes('/predict') && r.request().method() === 'POST'),
    trigger ? trigger() : page.click('[data-testid=predict]'),
  ]);
  await page.waitForFunction(() => document.getElementById('busy').hidden && window.__sent.length === 1);
  const b64 = await page.evaluate(() => window.__sent[0]);
  return { url: new URL(req.url()), body: Buffer.from(b64, 'base64'), status: resp.status(), headers: req.headers() };
}

// Records the bytes of every body the page posts (Chromium does not hand
// Blob bodies to the DevTools protocol); the request itself still goes to
// the real daemon unchanged.
const RECORD_BODIES = () => {
  const original = window.fetch;
  window.__sent = [];
  window.fetch = async function (input, init) {
    if (init && init.body instanceof Blob) {
      const bytes = new Uint8Array(await init.body.arrayBuffer());
      let bin = '';
      for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
      window.__sent.push(btoa(bin));
    }
    return original.call(this, input, init);
  };
};

async function shownResult(page) {
  await page.waitForSelector('[data-testid=result]:not([hidden])');
  return page.evaluate(() => {
    const q = (s) => document.querySelector(s);
    const bars = [...document.querySelectorAll('[data-testid^=bar-]')].map((b) => ({
      id: b.getAttribute('data-testid'), mean: Number(b.getAttribute('data-mean')),
      height: Number(b.getAttribute('height')), y: Number(b.getAttribute('y')),
    }));
    const whiskers = [...document.querySelectorAll('[data-testid^=whisker-]')].map((w) => {
      const line = w.querySelector('line');
      return {
        id: w.getAttribute('data-testid'), lower: Number(w.getAttribute('data-lower')),
        upper: Number(w.getAttribute('data-upper')), y1: Number(line.getAttribute('y1')),
        y2: Number(line.getAttribute('y2')),
      };
    });
    const rows = [...document.querySelectorAll('[data-testid=table] tbody tr')].map(
      (tr) => [...tr.children].map((td) => td.textContent));
    return {
      prediction: q('[data-testid=prediction]').textContent.trim(),
      uncertainVisible: !q('[data-testid=uncertain]').hidden,
      uncertainWhy: q('[data-testid=uncertain-why]').textContent,
      set: q('[data-testid=set]').hidden ? null : q('[data-testid=set]').textContent,
      entropy: q('#entropy').textContent, aleatoric: q('#aleatoric').textContent,
      epistemic: q('#epistemic').textContent, meta: q('[data-testid=meta]').textContent,
      bars, whiskers, rows,
    };
  });
}

// The same PNG and parameters straight to the API, from node.
async function apiAnswer(sent) {
  const r = await fetch(new URL(sent.url.pathname + sent.url.search, base), {
    method: 'POST', headers: { 'Content-Type': 'image/png' }, body: sent.body,
  });
  const text = await r.text();
  assert.equal(r.status, 200, `direct API call: ${r.status} ${text}`);
  return JSON.parse(text);
}

function checkChart(shown, api) {
  assert.equal(shown.bars.length, 10, `expected 10 bars, got ${shown.bars.length}`);
  assert.equal(shown.whiskers.length, 10, `expected 10 whiskers, got ${shown.whiskers.length}`);
  for (let k = 0; k < 10; k++) {
    const bar = shown.bars.find((b) => b.id === `bar-${k}`);
    const w = shown.whiskers.find((x) => x.id === `whisker-${k}`);
    assert.ok(bar && w, `bar-${k} or whisker-${k} missing`);
    const c = api.classes[k];
    assert.equal(bar.mean, c.mean, `bar-${k}: mean ${bar.mean}, API says ${c.mean}`);
    assert.equal(w.lower, c.lower, `whisker-${k}: lower ${w.lower}, API says ${c.lower}`);
    assert.equal(w.upper, c.upper, `whisker-${k}: upper ${w.upper}, API says ${c.upper}`);
    // Geometry: a taller bar for a larger mean, whisker top at or above its bottom.
    assert.ok(w.y2 <= w.y1 + 1e-9, `whisker-${k}: upper end drawn below the lower end`);
  }
  const top = shown.bars.find((b) => b.id === `bar-${api.prediction}`);
  for (const b of shown.bars) assert.ok(b.height <= top.height + 1e-9, `${b.id} taller than the predicted class's bar`);
  // The numbers table shows the API's values.
  assert.equal(shown.rows.length, 10);
  for (let k = 0; k < 10; k++) {
    assert.equal(shown.rows[k][0], String(k));
    assert.equal(shown.rows[k][1], api.classes[k].mean.toFixed(4), `table row ${k} mean`);
    assert.equal(shown.rows[k][3], api.classes[k].lower.toFixed(4), `table row ${k} lower`);
    assert.equal(shown.rows[k][4], api.classes[k].upper.toFixed(4), `table row ${k} upper`);
  }
  assert.equal(shown.entropy, api.uncertainty.entropy.toFixed(3));
  assert.equal(shown.epistemic, api.uncertainty.epistemic.toFixed(3));
  assert.equal(shown.uncertainVisible, api.uncertain === true, 'uncertain flag shown/hidden wrongly');
  // every reason the API gives is said on the page, and the set's digits shown
  assert.equal(shown.uncertainWhy.split('; ').filter(Boolean).length, api.uncertain_reasons.length,
    `reasons ${JSON.stringify(api.uncertain_reasons)} shown as '${shown.uncertainWhy}'`);
  if (api.prediction_set === null) assert.equal(shown.set, null, 'a set shown without one');
  else assert.ok(shown.set.includes('{' + api.prediction_set.join(', ') + '}'), `set ${shown.set} vs ${api.prediction_set}`);
}

const results = {};
async function scenario(name, fn) {
  try {
    await fn();
    results[name] = 'ok';
    console.log(`ok - ${name}`);
  } catch (e) {
    results[name] = String(e && e.stack || e).split('\n').slice(0, 6).join('\n');
    console.log(`not ok - ${name}: ${results[name]}`);
  }
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  // ---- desktop, mouse -----------------------------------------------------
  const desk = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const page = await desk.newPage();
  const problems = [];
  const foreign = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // The error scenario provokes one 400 on purpose; Chromium logs it.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 400/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  await desk.addInitScript(RECORD_BODIES);
  page.on('request', (r) => { if (new URL(r.url()).origin !== base.origin) foreign.push(r.url()); });

  await scenario('page loads with its own resources only', async () => {
    const r = await page.goto(base.href);
    assert.equal(r.status(), 200);
    await page.waitForLoadState('networkidle');
    assert.equal(await page.title(), 'bnn-serve — draw a digit');
    assert.ok(await page.locator('label[for=samples]').count() === 1, 'samples input has no label');
    assert.ok(await page.locator('label[for=interval]').count() === 1, 'interval input has no label');
    assert.ok(await page.locator('label[for=file]').count() === 1, 'file input has no label');
    assert.equal(await inkFraction(page), 0, 'pad not blank at start');
    const model = await (await fetch(new URL('v1/model', base))).json();
    await page.waitForFunction(() => document.querySelector('[data-testid=model-info]').textContent !== '');
    const info = await page.textContent('[data-testid=model-info]');
    assert.ok(info.includes(model.architecture), `model line: ${info}`);
    assert.ok(info.includes(Number(model.parameters).toLocaleString('en-US')), `model line: ${info}`);
    assert.equal(await page.getAttribute('[data-testid=samples]', 'max'), String(model.limits.max_samples));
  });

  await scenario('mouse-drawn 7 is predicted 7 with ten bars and whiskers', async () => {
    await drawWithMouse(page, 7);
    assert.ok(await inkFraction(page) > 0.02, 'the strokes left no ink on the pad');
    await setParams(page, { samples: '200', interval: '0.95', seed: '42' });
    const sent = await predict(page);
    assert.equal(sent.status, 200);
    assert.equal(sent.headers['content-type'], 'image/png');
    assert.equal(sent.url.searchParams.get('samples'), '200');
    assert.equal(sent.url.searchParams.get('interval'), '0.95');
    assert.equal(sent.url.searchParams.get('seed'), '42');
    assert.deepEqual([...sent.body.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'body is not a PNG');
    const shown = await shownResult(page);
    const api = await apiAnswer(sent);
    assert.equal(api.seed, 42);
    assert.equal(shown.prediction, String(api.prediction));
    assert.equal(api.prediction, 7, `the model says ${api.prediction} for the drawn 7: ${JSON.stringify(api.classes.map((c) => c.mean.toFixed(3)))}`);
    checkChart(shown, api);
    assert.match(shown.meta, /seed 42/);
    fs.mkdirSync(path.dirname(args.screenshot), { recursive: true });
    await page.screenshot({ path: args.screenshot, fullPage: true });
  });

  await scenario('an ambiguous 7-or-1 shows wide whiskers', async () => {
    await page.click('[data-testid=clear]');
    await drawWithMouse(page, '7or1');
    await setParams(page, { samples: '400', interval: '0.95', seed: '1' });
    const sent = await predict(page);
    const api = await apiAnswer(sent);
    const shown = await shownResult(page);
    checkChart(shown, api);
    const ranked = [...api.classes].sort((a, b) => b.mean - a.mean);
    assert.deepEqual(new Set([ranked[0].label, ranked[1].label]), new Set([1, 7]),
      `expected 1 and 7 on top, got ${ranked.slice(0, 3).map((c) => `${c.label}:${c.mean.toFixed(2)}`)}`);
    const width = ranked[0].upper - ranked[0].lower;
    assert.ok(width > 0.2, `the top class's interval is narrow (${width.toFixed(3)}) for an ambiguous drawing`);
    assert.ok(api.uncertainty.epistemic > 0.02, `epistemic ${api.uncertainty.epistemic} for an ambiguous drawing`);
    await page.screenshot({ path: args.screenshot.replace(/\.png$/, '-ambiguous.png'), fullPage: true });
  });

  await scenario('keyboard: Delete clears the pad, Enter predicts', async () => {
    await page.focus('[data-testid=pad]');
    await page.keyboard.press('Delete');
    assert.equal(await inkFraction(page), 0, 'Delete did not clear the pad');
    assert.ok(await page.locator('[data-testid=result]').isHidden(), 'old result still shown after clearing');
    await drawWithMouse(page, 0);
    await page.focus('[data-testid=pad]');
    await setParams(page, { samples: '100', seed: '3' });
    await page.focus('[data-testid=pad]');
    const sent = await predict(page, () => page.keyboard.press('Enter'));
    const api = await apiAnswer(sent);
    const shown = await shownResult(page);
    assert.equal(api.prediction, 0, `the model says ${api.prediction} for the drawn 0`);
    checkChart(shown, api);
    await page.click('[data-testid=clear]');
    assert.equal(await inkFraction(page), 0, 'Clear did not clear the pad');
  });

  await scenario('a picked MNIST PNG is sent as it is and predicted', async () => {
    const png = fs.readFileSync(args.png);
    await page.setInputFiles('[data-testid=file]', args.png);
    await setParams(page, { samples: '100', seed: '9' });
    const sent = await predict(page);
    assert.ok(Buffer.compare(sent.body, png) === 0, 'the page did not send the picked file byte for byte');
    const api = await apiAnswer(sent);
    const shown = await shownResult(page);
    assert.equal(api.prediction, Number(args.label), `the model says ${api.prediction} for MNIST label ${args.label}`);
    assert.equal(api.preprocessing, 'none');
    checkChart(shown, api);
  });

  await scenario('errors are shown readably', async () => {
    await page.click('[data-testid=clear]');
    await drawWithMouse(page, 1);
    await setParams(page, { samples: '0' });
    await page.click('[data-testid=predict]');
    const local = page.locator('[data-testid=error]');
    await local.waitFor({ state: 'visible' });
    assert.match(await local.textContent(), /Samples must be a whole number from 1 to 10000/);
    // A server-side refusal: a file that is not a PNG.
    await setParams(page, { samples: '50' });
    await page.setInputFiles('[data-testid=file]', { name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('GIF89a, not a PNG') });
    const sent = await predict(page);
    assert.equal(sent.status, 400);
    await page.waitForFunction(() => /invalid_png/.test(document.querySelector('[data-testid=error]').textContent));
    assert.match(await local.textContent(), /The server answered 400.*\(invalid_png\)/);
    assert.equal(await local.getAttribute('role'), 'alert');
  });

  await scenario('no page errors and no foreign requests', async () => {
    assert.deepEqual(problems, []);
    assert.deepEqual(foreign, []);
  });
  await desk.close();

  // ---- phone, touch ---------------------------------------------------------
  const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2 });
  await phone.addInitScript(RECORD_BODIES);
  const mobile = await phone.newPage();
  const cdp = await phone.newCDPSession(mobile);
  await scenario('phone width: touch-drawn 1 is predicted 1, no horizontal scroll', async () => {
    await mobile.goto(base.href);
    const widths = await mobile.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(widths[0] <= widths[1], `page scrolls sideways on a phone: ${widths}`);
    await drawWithTouch(mobile, cdp, 1);
    assert.ok(await inkFraction(mobile) > 0.01, 'touch strokes left no ink');
    await setParams(mobile, { samples: '200', seed: '5' });
    // A person's finger takes a moment to travel from the pad to the button;
    // Chromium's gesture detector drops a tap that follows a touch stroke
    // within a few milliseconds.
    await mobile.waitForTimeout(300);
    const sent = await predict(mobile, () => mobile.tap('[data-testid=predict]'));
    const api = await apiAnswer(sent);
    const shown = await shownResult(mobile);
    assert.equal(api.prediction, 1, `the model says ${api.prediction} for the touch-drawn 1`);
    checkChart(shown, api);
    await mobile.screenshot({ path: args.screenshot.replace(/\.png$/, '-phone.png'), fullPage: true });
  });
  await phone.close();
} finally {
  await browser.close();
}

const failed = Object.values(results).filter((v) => v !== 'ok').length;
console.log(`${Object.keys(results).length - failed} passed, ${failed} failed`);
console.log(JSON.stringify({ results }));
process.exit(failed ? 1 : 0);
