// bnn-serve demo page: draw (or drop) a digit, POST it to /predict as
// image/png, draw the per-class means with their interval whiskers.
// No framework and no external resources: the page must work from the
// daemon alone, offline, and inside a locked-down container.
(function () {
  'use strict';

  const SVG_NS = 'http://www.w3.org/2000/svg';
  // The pad is 280x280 (10x MNIST's 28x28); a 20 px pen matches MNIST's
  // stroke width of about 2 px after the daemon scales the digit to 20x20.
  const PEN_WIDTH = 20;

  const pad = document.getElementById('pad');
  const ctx = pad.getContext('2d');
  const dropZone = document.getElementById('drop-zone');
  const dropHint = document.getElementById('drop-hint');
  const source = document.getElementById('source');
  const fileInput = document.getElementById('file');
  const samplesInput = document.getElementById('samples');
  const intervalInput = document.getElementById('interval');
  const seedInput = document.getElementById('seed');
  const predictButton = document.getElementById('predict');
  const clearButton = document.getElementById('clear');
  const errorBox = document.getElementById('error');
  const busy = document.getElementById('busy');
  const result = document.getElementById('result');

  // A picked or dropped PNG is sent as it is (the daemon preprocesses any
  // size and polarity better than a canvas resample would); drawing on the
  // pad or clearing it switches back to the drawing.
  let pickedFile = null;
  let inFlight = null;
  // The server's limit, from GET /v1/model (10000 unless configured).
  let maxSamples = 10000;

  // ---- drawing ---------------------------------------------------------

  function clearPad() {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.strokeStyle = '#fff';
    ctx.fillStyle = '#fff';
    ctx.lineWidth = PEN_WIDTH;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
  }

  // Pointer position in canvas pixels: the pad is shown smaller than
  // 280 px on a phone, so scale by the displayed size.
  function padPoint(ev) {
    const r = pad.getBoundingClientRect();
    return {
      x: (ev.clientX - r.left) * (pad.width / r.width),
      y: (ev.clientY - r.top) * (pad.height / r.height),
    };
  }

  let last = null;
  function useDrawing() {
    if (pickedFile) {
      pickedFile = null;
      fileInput.value = '';
      clearPad();
    }
    source.textContent = 'Source: your drawing';
  }

  pad.addEventListener('pointerdown', function (ev) {
    if (ev.button !== 0 && ev.pointerType === 'mouse') return;
    ev.preventDefault();
    useDrawing();
    pad.setPointerCapture(ev.pointerId);
    last = padPoint(ev);
    // A dot for a tap without movement.
    ctx.beginPath();
    ctx.arc(last.x, last.y, PEN_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fill();
  });
  pad.addEventListener('pointermove', function (ev) {
    if (last === null) return;
    ev.preventDefault();
    // Coalesced events keep fast strokes smooth on touch screens.
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    for (const e of (events.length ? events : [ev])) {
      const p = padPoint(e);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      last = p;
    }
  });
  function endStroke() { last = null; }
  pad.addEventListener('pointerup', endStroke);
  pad.addEventListener('pointercancel', endStroke);
  pad.addEventListener('lostpointercapture', endStroke);

  pad.addEventListener('keydown', function (ev) {
    if (ev.key === 'Delete' || ev.key === 'Backspace') {
      ev.preventDefault();
      clearAll();
    } else if (ev.key === 'Enter') {
      ev.preventDefault();
      predict();
    }
  });

  function clearAll() {
    pickedFile = null;
    fileInput.value = '';
    clearPad();
    source.textContent = 'Source: your drawing';
    hideError();
    result.hidden = true;
  }
  clearButton.addEventListener('click', clearAll);

  // ---- picking and dropping a PNG ---------------------------------------

  function usePng(file) {
    if (!file) return;
    if (file.type && file.type !== 'image/png') {
      showError('Only PNG files are accepted; this one is ' + file.type + '.');
      return;
    }
    pickedFile = file;
    source.textContent = 'Source: ' + file.name + ' (' + file.size + ' bytes, sent as it is)';
    hideError();
    // Show it on the pad, scaled to fit, for the user's eyes only.
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = function () {
      clearPad();
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, pad.width, pad.height);
      const s = Math.min(pad.width / img.width, pad.height / img.height);
      const w = img.width * s, h = img.height * s;
      ctx.imageSmoothingEnabled = s < 1;
      ctx.drawImage(img, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
      ctx.fillStyle = '#fff';
      URL.revokeObjectURL(url);
    };
    img.onerror = function () {
      URL.revokeObjectURL(url);
      // Still send it: the server's answer says precisely what is wrong.
    };
    img.src = url;
  }

  fileInput.addEventListener('change', function () {
    usePng(fileInput.files && fileInput.files[0]);
  });

  ['dragenter', 'dragover'].forEach(function (type) {
    dropZone.addEventListener(type, function (ev) {
      ev.preventDefault();
      dropZone.classList.add('dragging');
      dropHint.hidden = false;
    });
  });
  ['dragleave', 'drop'].forEach(function (type) {
    dropZone.addEventListener(type, function (ev) {
      ev.preventDefault();
      dropZone.classList.remove('dragging');
      dropHint.hidden = true;
    });
  });
  dropZone.addEventListener('drop', function (ev) {
    const files = ev.dataTransfer && ev.dataTransfer.files;
    if (files && files.length) usePng(files[0]);
  });

  // ---- predicting ------------------------------------------------------

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
  }
  function hideError() {
    errorBox.hidden = true;
    errorBox.textContent = '';
  }

  // Checks the inputs against the API's bounds before sending, so the user
  // gets a message next to the form rather than a 400.
  function readParams() {
    const q = new URLSearchParams();
    const samples = samplesInput.value.trim();
    if (!/^\d+$/.test(samples) || +samples < 1 || +samples > maxSamples) {
      throw new Error('Samples must be a whole number from 1 to ' + maxSamples + '.');
    }
    q.set('samples', samples);
    const interval = intervalInput.value.trim();
    const c = Number(interval);
    if (interval === '' || !(c > 0 && c < 1)) {
      throw new Error('Interval must be a number strictly between 0 and 1, such as 0.95.');
    }
    q.set('interval', interval);
    const seed = seedInput.value.trim();
    if (seed !== '') {
      if (!/^\d+$/.test(seed) || Number(seed) > Number.MAX_SAFE_INTEGER) {
        throw new Error('Seed must be a whole number from 0 to 9007199254740991, or empty.');
      }
      q.set('seed', seed);
    }
    return q;
  }

  function padBlob() {
    return new Promise(function (resolve, reject) {
      pad.toBlob(function (b) {
        if (b) resolve(b); else reject(new Error('The browser could not encode the drawing as PNG.'));
      }, 'image/png');
    });
  }

  async function predict() {
    hideError();
    let params;
    try {
      params = readParams();
    } catch (e) {
      showError(e.message);
      return;
    }
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    busy.hidden = false;
    predictButton.disabled = true;
    try {
      const body = pickedFile || await padBlob();
      const res = await fetch('predict?' + params.toString(), {
        method: 'POST',
        headers: { 'Content-Type': 'image/png' },
        body: body,
        signal: controller.signal,
      });
      const text = await res.text();
      let data = null;
      try { data = JSON.parse(text); } catch (e) { /* reported below */ }
      if (!res.ok) {
        const err = data && data.error;
        let msg = 'The server answered ' + res.status + (res.statusText ? ' ' + res.statusText : '');
        if (err) msg += ': ' + err.message + ' (' + err.code + ')';
        const retry = res.headers.get('Retry-After');
        if (retry) msg += '. Busy: try again in ' + retry + ' s.';
        showError(msg);
        return;
      }
      if (!data || !Array.isArray(data.classes)) {
        showError('The server sent something that is not a prediction.');
        return;
      }
      render(data, res.headers.get('X-Request-Id'));
    } catch (e) {
      if (e.name === 'AbortError') return;
      showError('Could not reach the server: ' + e.message);
    } finally {
      if (inFlight === controller) {
        inFlight = null;
        busy.hidden = true;
        predictButton.disabled = false;
      }
    }
  }
  predictButton.addEventListener('click', predict);
  document.getElementById('params').addEventListener('submit', function (ev) {
    ev.preventDefault();
    predict();
  });

  // ---- drawing the answer ----------------------------------------------

  function fmt(x, digits) {
    return Number(x).toFixed(digits === undefined ? 3 : digits);
  }

  function el(name, attrs, text) {
    const e = document.createElementNS(SVG_NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The blog's picture: ten bars (mean probability) with lower-upper
  // whiskers, on a 0..1 axis. viewBox units; the SVG scales to its box.
  function drawChart(svg, data) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const left = 40, right = 410, top = 12, bottom = 210;
    const h = bottom - top;
    const slot = (right - left) / data.classes.length;
    const y = function (p) { return bottom - Math.max(0, Math.min(1, p)) * h; };

    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      svg.appendChild(el('line', { x1: left, x2: right, y1: y(t), y2: y(t), class: 'grid' }));
      svg.appendChild(el('text', { x: left - 6, y: y(t) + 4, class: 'tick', 'text-anchor': 'end' }, String(t)));
    }
    data.classes.forEach(function (c, i) {
      const cx = left + slot * (i + 0.5);
      const bw = slot * 0.6;
      const g = el('g', { 'data-testid': 'class-' + c.label });
      const bar = el('rect', {
        x: cx - bw / 2, y: y(c.mean), width: bw, height: Math.max(0, bottom - y(c.mean)),
        class: 'bar' + (c.label === data.prediction ? ' predicted' : ''),
        'data-testid': 'bar-' + c.label, 'data-mean': c.mean,
      });
      bar.appendChild(el('title', {}, 'class ' + c.label + ': mean ' + fmt(c.mean) +
        ', interval ' + fmt(c.lower) + '–' + fmt(c.upper)));
      g.appendChild(bar);
      // Whisker: vertical line lower..upper with caps, drawn even when the
      // interval is a single point so every class shows its spread.
      const w = el('g', {
        class: 'whisker', 'data-testid': 'whisker-' + c.label,
        'data-lower': c.lower, 'data-upper': c.upper,
      });
      const cap = bw * 0.35;
      w.appendChild(el('line', { x1: cx, x2: cx, y1: y(c.lower), y2: y(c.upper) }));
      w.appendChild(el('line', { x1: cx - cap, x2: cx + cap, y1: y(c.lower), y2: y(c.lower) }));
      w.appendChild(el('line', { x1: cx - cap, x2: cx + cap, y1: y(c.upper), y2: y(c.upper) }));
      g.appendChild(w);
      g.appendChild(el('text', { x: cx, y: bottom + 18, class: 'axis-label', 'text-anchor': 'middle' }, String(c.label)));
      svg.appendChild(g);
    });
    svg.appendChild(el('line', { x1: left, x2: right, y1: bottom, y2: bottom, class: 'axis' }));
  }

  function render(data, requestId) {
    const best = data.classes[data.prediction];
    document.getElementById('prediction').textContent = String(data.prediction);
    document.getElementById('confidence').textContent =
      'Mean probability ' + fmt(best.mean) + ', ' + Math.round(data.interval * 1000) / 10 +
      '\u00a0% interval ' + fmt(best.lower) + '–' + fmt(best.upper) + ', over ' + data.samples + ' passes.';
    document.getElementById('uncertain').hidden = data.uncertain !== true;
    const why = { no_digit: 'no digit was found in the picture',
                  entropy: 'the answer\u2019s entropy is above the calibrated threshold',
                  epistemic: 'the passes disagree (the epistemic part is above its threshold)' };
    document.getElementById('uncertain-why').textContent =
      (data.uncertain_reasons || []).map((r) => why[r] || r).join('; ');
    const set = document.getElementById('set');
    set.hidden = !Array.isArray(data.prediction_set);
    if (!set.hidden)
      set.textContent = 'Prediction set at ' + Math.round(data.set_coverage * 1000) / 10 + '\u00a0%: ' +
        (data.prediction_set.length ? '{' + data.prediction_set.join(', ') + '}' : '{} (no digit is plausible enough)');
    document.getElementById('coverage-text').textContent = Math.round(data.interval * 1000) / 10 + '\u00a0%';
    drawChart(document.getElementById('chart'), data);

    const u = data.uncertainty || {};
    document.getElementById('entropy').textContent = fmt(u.entropy);
    document.getElementById('aleatoric').textContent = fmt(u.aleatoric);
    document.getElementById('epistemic').textContent = fmt(u.epistemic);

    const tbody = document.querySelector('#table tbody');
    tbody.textContent = '';
    for (const c of data.classes) {
      const tr = document.createElement('tr');
      if (c.label === data.prediction) tr.className = 'predicted';
      for (const v of [String(c.label), fmt(c.mean, 4), fmt(c.std, 4), fmt(c.lower, 4), fmt(c.upper, 4)]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
    const t = data.timing_ms || {};
    document.getElementById('meta').textContent =
      'seed ' + data.seed + ' · mode ' + data.mode + ' · preprocessing ' + data.preprocessing +
      ' · decode ' + fmt(t.decode, 2) + ' ms, queue ' + fmt(t.queue, 2) + ' ms, compute ' +
      fmt(t.compute, 2) + ' ms' + (requestId ? ' · request ' + requestId : '');
    result.hidden = false;
    // On a phone the answer is below the pad: bring it into view.
    const top = result.getBoundingClientRect().top;
    if (top > window.innerHeight * 0.8) result.scrollIntoView({ block: 'start' });
  }

  // What is being served, and the limits in force; the page works without it.
  async function loadModelInfo() {
    try {
      const res = await fetch('v1/model');
      if (!res.ok) return;
      const m = await res.json();
      if (m.limits && m.limits.max_samples > 0) {
        maxSamples = m.limits.max_samples;
        samplesInput.max = String(maxSamples);
        document.getElementById('max-samples').textContent = String(maxSamples);
      }
      const meta = m.metadata || {};
      let text = 'Model: ' + m.architecture + ', ' + Number(m.parameters).toLocaleString('en-US') +
        ' parameters';
      if (meta.test_accuracy) {
        text += ', ' + (100 * Number(meta.test_accuracy)).toFixed(2) + '\u00a0% MNIST test accuracy' +
          (meta.test_samples ? ' at T\u00a0=\u00a0' + meta.test_samples : '');
      }
      if (meta.objective) text += ' · objective: ' + meta.objective;
      document.getElementById('model-info').textContent = text + '.';
    } catch (e) {
      /* offline or an old server: the footer stays empty */
    }
  }

  clearPad();
  loadModelInfo();
})();
