// The dashboard page's script (served as /dashboard.js; plain browser
// JavaScript, no dependencies). It keeps every run's records as the server
// pushes them over /api/stream (RunDelta: reset = the whole run, else records
// to append), and draws: one SVG chart per scalar with a line per selected
// run (TensorBoard's scalars view: run list with colours, step / epoch / time
// axis, EMA smoothing), the confusion matrix of an epoch with per-class
// precision, recall, F1 and support computed from it, and a comparison table.
// window.finetorchDashboard exposes the state (the browser test reads it).
export const PAGE_SCRIPT = String.raw`'use strict';
(function () {
  var SVGNS = 'http://www.w3.org/2000/svg';
  // Paul Tol's bright + muted palettes: distinguishable, colour-blind safe
  var COLORS = ['#4477aa', '#ee6677', '#228833', '#ccbb44', '#66ccee', '#aa3377', '#332288', '#117733', '#882255', '#999933', '#44aa99', '#bbbbbb'];
  var DASHES = ['', '6 3', '2 2', '8 3 2 3', '1 3'];

  var state = {
    runs: {}, // id -> { info, steps, epochs, evals, color }
    order: [],
    selected: {}, // id -> bool
    xAxis: 'step',
    smoothing: 0.6,
    logY: {},
    matrixRun: null,
    matrixChoice: 'last',
    updates: 0,
    ready: false,
    connected: false,
  };
  window.finetorchDashboard = state;

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'class') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  function num(v) { return typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN; }
  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return v === null || v === undefined ? '–' : String(v);
    var a = Math.abs(v);
    if (Number.isInteger(v) && a < 1e6) return String(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }
  function fmt4(v) { return v === null || v === undefined || !isFinite(v) ? '–' : v.toFixed(4); }
  function duration(s) {
    if (s === null || s === undefined || !isFinite(s)) return '–';
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    var m = Math.floor(s / 60);
    return m < 60 ? m + ' min ' + Math.round(s % 60) + ' s' : Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }

  // ---- data

  function applyDelta(d) {
    var run = state.runs[d.run];
    if (!run) {
      run = state.runs[d.run] = { info: d.info, steps: [], epochs: [], evals: [], color: COLORS[state.order.length % COLORS.length] };
      state.order.push(d.run);
      if (!(d.run in state.selected)) state.selected[d.run] = true;
    }
    run.info = d.info;
    if (d.reset) { run.steps = []; run.epochs = []; run.evals = []; }
    d.steps.forEach(function (s) { s.loss = num(s.loss); run.steps.push(s); });
    d.epochs.forEach(function (e) { e.trainLoss = num(e.trainLoss); if (e.val) e.val.loss = num(e.val.loss); run.epochs.push(e); });
    d.evals.forEach(function (e) { run.evals.push(e); });
    state.updates++;
    schedule();
  }

  function connect() {
    var source = new EventSource('api/stream');
    source.addEventListener('run', function (m) { applyDelta(JSON.parse(m.data)); });
    source.addEventListener('ready', function () {
      state.ready = true;
      state.connected = true;
      setConnection('live', 'live');
      schedule();
    });
    source.onerror = function () {
      state.connected = false;
      setConnection('lost', 'reconnecting…');
    };
  }
  function setConnection(s, label) {
    var c = $('connection');
    c.dataset.state = s;
    c.textContent = label;
  }

  // ---- chart series

  // x of a step on each scale: step index, fractional epoch, seconds since the run started
  function stepX(run, s) {
    if (state.xAxis === 'epoch') return s.batches ? s.epoch + (s.batch + 1) / s.batches : s.epoch + 1;
    if (state.xAxis === 'time') return (s.time - (run.info.startedAt || run.steps[0].time)) / 1000;
    return s.step + 1;
  }
  function epochX(run, e) {
    if (state.xAxis === 'epoch') return e.epoch + 1;
    if (state.xAxis === 'time') return (e.time - (run.info.startedAt || e.time)) / 1000;
    return e.steps;
  }

  // TensorBoard's smoothing: an exponential moving average, debiased for the first points
  function smooth(points, w) {
    if (!w) return points;
    var last = 0, n = 0;
    return points.map(function (p) {
      if (!isFinite(p[1])) return p;
      last = last * w + (1 - w) * p[1];
      n++;
      return [p[0], last / (1 - Math.pow(w, n))];
    });
  }

  // the charts: each a list of series {run, name, points, dash, raw?, markers?}
  function charts() {
    var ids = state.order.filter(function (id) { return state.selected[id]; });
    var runs = ids.map(function (id) { return state.runs[id]; });
    var anyVal = runs.some(function (r) { return r.epochs.some(function (e) { return e.val; }); });
    var list = [];
    var loss = [];
    runs.forEach(function (r) {
      if (r.steps.length) {
        var pts = r.steps.map(function (s) { return [stepX(r, s), s.loss]; });
        loss.push({ run: r, name: 'train', points: smooth(pts, state.smoothing), raw: state.smoothing ? pts : null, dash: '' });
      }
      var val = r.epochs.filter(function (e) { return e.val; }).map(function (e) { return [epochX(r, e), e.val.loss]; });
      if (val.length) loss.push({ run: r, name: 'val', points: val, dash: '6 3', markers: true });
    });
    list.push({ id: 'loss', title: 'loss', series: loss, legend: anyVal ? [['train (per step)', ''], ['val (per epoch)', '6 3']] : null });
    function epochMetric(id, title, get) {
      var series = [];
      runs.forEach(function (r) {
        var pts = r.epochs.filter(function (e) { return e.val && get(e.val) !== null && get(e.val) !== undefined; }).map(function (e) { return [epochX(r, e), get(e.val)]; });
        if (pts.length) series.push({ run: r, name: title, points: pts, dash: '', markers: true });
      });
      if (series.length) list.push({ id: id, title: title, series: series });
    }
    epochMetric('val-accuracy', 'val accuracy', function (v) { return v.accuracy; });
    epochMetric('val-f1', 'val F1 (macro)', function (v) { return v.f1Macro; });
    epochMetric('val-entity-f1', 'val entity F1', function (v) { return v.entityF1; });
    epochMetric('val-auc', 'val ROC AUC', function (v) { return v.rocAuc; });
    // learning rates: one line per param group, groups with the same schedule drawn once
    var lr = [];
    var lrLegend = [];
    runs.forEach(function (r) {
      if (!r.steps.length) return;
      var groups = r.steps[0].lrs.length;
      var seen = {};
      var k = 0;
      for (var g = 0; g < groups; g++) {
        var key = r.steps.map(function (s) { return s.lrs[g]; }).join(',');
        var name = r.info.groups[g] || 'group ' + g;
        if (seen[key]) { seen[key].names.push(name); continue; }
        var series = { run: r, name: name, names: [name], points: r.steps.map(function (s) { return [stepX(r, s), s.lrs[g]]; }), dash: DASHES[k % DASHES.length] };
        seen[key] = series;
        lr.push(series);
        k++;
      }
    });
    // a legend of the line styles when some run has groups on different schedules
    var several = lr.some(function (s) { return s.dash; });
    lr.forEach(function (s) {
      var names = s.names.filter(function (n, i) { return s.names.indexOf(n) === i; });
      s.name = names.length > 3 ? names[0] + ' … ' + names[names.length - 1] : names.join(', ');
      if (several && lrLegend.length < 12) lrLegend.push([(runs.length > 1 ? s.run.info.id + ': ' : '') + s.name, s.dash]);
    });
    list.push({ id: 'lr', title: 'learning rate (per param group)', series: lr, legend: several ? lrLegend : null });
    var speed = [];
    runs.forEach(function (r) {
      if (r.steps.length) speed.push({ run: r, name: 'samples/s', points: smooth(r.steps.map(function (s) { return [stepX(r, s), s.samplesPerSecond]; }), state.smoothing), dash: '' });
    });
    list.push({ id: 'speed', title: 'throughput (samples/s)', series: speed });
    return list;
  }

  // ---- drawing

  // [lo, hi] widened when its width is below float resolution (values equal up to rounding), so ticks advance
  function spread(lo, hi) {
    if (hi - lo > Math.max(Math.abs(lo), Math.abs(hi)) * 1e-9) return [lo, hi];
    var mid = (lo + hi) / 2, half = Math.abs(mid) * 0.1 || 0.5;
    return [mid - half, mid + half];
  }
  function niceTicks(lo, hi, n) {
    var r = spread(lo, hi);
    lo = r[0]; hi = r[1];
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    var err = (n * step) / (hi - lo);
    if (err <= 0.15) step *= 10; else if (err <= 0.35) step *= 5; else if (err <= 0.75) step *= 2;
    var ticks = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9 && ticks.length < 100; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    return ticks;
  }

  var chartEls = {};
  function chartCard(c) {
    var card = chartEls[c.id];
    if (!card) {
      var log = el('button', { type: 'button', title: 'logarithmic vertical axis', 'aria-pressed': 'false', text: 'log' });
      log.addEventListener('click', function () {
        state.logY[c.id] = !state.logY[c.id];
        log.setAttribute('aria-pressed', String(!!state.logY[c.id]));
        render();
      });
      card = el('div', { class: 'chart', 'data-chart': c.id }, [el('div', { class: 'chart-head' }, [el('h3', { text: c.title }), log]), svg('svg', {}), el('div', { class: 'legend' })]);
      chartEls[c.id] = card;
    }
    return card;
  }

  function drawChart(c) {
    var card = chartCard(c);
    var box = card.querySelector('svg');
    var W = box.clientWidth || 420, H = box.clientHeight || 230;
    box.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    while (box.firstChild) box.removeChild(box.firstChild);
    var logY = !!state.logY[c.id];
    var ok = function (p) { return isFinite(p[0]) && isFinite(p[1]) && (!logY || p[1] > 0); };
    var xs = [], ys = [];
    c.series.forEach(function (s) {
      (s.raw || s.points).concat(s.raw ? s.points : []).forEach(function (p) { if (ok(p)) { xs.push(p[0]); ys.push(p[1]); } });
    });
    var M = { l: 52, r: 10, t: 8, b: 24 };
    var legend = card.querySelector('.legend');
    legend.textContent = '';
    (c.legend || []).forEach(function (l) {
      var sample = svg('svg', { viewBox: '0 0 26 8' });
      sample.appendChild(svg('line', { x1: 0, y1: 4, x2: 26, y2: 4, stroke: '#57606a', 'stroke-width': 2, 'stroke-dasharray': l[1] }));
      legend.appendChild(el('span', {}, [sample, ' ' + l[0]]));
    });
    card.dataset.points = String(xs.length);
    if (!xs.length) {
      var t = svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' });
      t.textContent = 'no data yet';
      box.appendChild(t);
      return card;
    }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (state.xAxis === 'step' || state.xAxis === 'epoch') x0 = Math.min(x0, 0);
    if (x1 === x0) x1 = x0 + 1;
    var xr = spread(x0, x1);
    x0 = xr[0]; x1 = xr[1];
    var ty = logY ? function (v) { return Math.log10(v); } : function (v) { return v; };
    var Y0 = ty(y0), Y1 = ty(y1);
    if (Y1 === Y0) { Y0 -= 0.5; Y1 += 0.5; }
    var yr = spread(Y0, Y1);
    Y0 = yr[0]; Y1 = yr[1];
    var pad = (Y1 - Y0) * 0.05;
    Y0 -= pad; Y1 += pad;
    var px = function (x) { return M.l + ((x - x0) / (x1 - x0)) * (W - M.l - M.r); };
    var py = function (y) { return H - M.b - ((ty(y) - Y0) / (Y1 - Y0)) * (H - M.t - M.b); };
    // grid and ticks
    niceTicks(x0, x1, 6).forEach(function (t) {
      box.appendChild(svg('line', { class: 'grid', x1: px(t), x2: px(t), y1: M.t, y2: H - M.b }));
      var l = svg('text', { x: px(t), y: H - M.b + 13, 'text-anchor': 'middle' });
      l.textContent = fmt(t);
      box.appendChild(l);
    });
    var yt = logY ? niceTicks(Math.floor(Y0), Math.ceil(Y1), 5).filter(function (t) { return t >= Y0 && t <= Y1 && Number.isInteger(t); }).map(function (t) { return Math.pow(10, t); }) : niceTicks(Y0, Y1, 5);
    yt.forEach(function (t) {
      var y = py(t);
      if (y < M.t - 1 || y > H - M.b + 1) return;
      box.appendChild(svg('line', { class: 'grid', x1: M.l, x2: W - M.r, y1: y, y2: y }));
      var l = svg('text', { x: M.l - 4, y: y + 3, 'text-anchor': 'end' });
      l.textContent = fmt(t);
      box.appendChild(l);
    });
    box.appendChild(svg('line', { class: 'axis', x1: M.l, x2: M.l, y1: M.t, y2: H - M.b }));
    box.appendChild(svg('line', { class: 'axis', x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
    var xl = svg('text', { x: W - M.r, y: H - 2, 'text-anchor': 'end' });
    xl.textContent = state.xAxis === 'time' ? 'seconds' : state.xAxis;
    box.appendChild(xl);
    function path(points) {
      var d = '', pen = false;
      points.forEach(function (p) {
        if (!ok(p)) { pen = false; return; }
        d += (pen ? 'L' : 'M') + px(p[0]).toFixed(1) + ',' + py(p[1]).toFixed(1);
        pen = true;
      });
      return d;
    }
    c.series.forEach(function (s) {
      var color = s.run.color;
      if (s.raw) box.appendChild(svg('path', { d: path(s.raw), fill: 'none', stroke: color, 'stroke-opacity': 0.25, 'stroke-width': 1 }));
      var line = svg('path', { d: path(s.points), fill: 'none', stroke: color, 'stroke-width': 1.8, 'stroke-dasharray': s.dash || '', 'stroke-linejoin': 'round', 'data-run': s.run.info.id, 'data-series': s.name, 'data-points': s.points.filter(ok).length });
      box.appendChild(line);
      if (s.markers && s.points.length <= 60)
        s.points.forEach(function (p) { if (ok(p)) box.appendChild(svg('circle', { cx: px(p[0]), cy: py(p[1]), r: 2.5, fill: color })); });
    });
    var cursor = svg('line', { class: 'cursor', y1: M.t, y2: H - M.b, visibility: 'hidden' });
    box.appendChild(cursor);
    box.onmousemove = function (ev) {
      var r = box.getBoundingClientRect();
      var mx = ((ev.clientX - r.left) / r.width) * W;
      var x = x0 + ((mx - M.l) / (W - M.l - M.r)) * (x1 - x0);
      var rows = [];
      c.series.forEach(function (s) {
        var best = null;
        s.points.forEach(function (p) { if (ok(p) && (best === null || Math.abs(p[0] - x) < Math.abs(best[0] - x))) best = p; });
        if (best) rows.push([s, best]);
      });
      if (!rows.length) return;
      cursor.setAttribute('x1', px(rows[0][1][0]));
      cursor.setAttribute('x2', px(rows[0][1][0]));
      cursor.setAttribute('visibility', 'visible');
      var tip = $('tooltip');
      tip.textContent = '';
      var table = el('table');
      rows.forEach(function (row) {
        var sw = el('span', { class: 'swatch' });
        sw.style.background = row[0].run.color;
        table.appendChild(el('tr', {}, [el('td', {}, [sw, ' ' + row[0].run.info.id + (c.series.length > 1 ? ' · ' + row[0].name : '')]), el('td', { text: (state.xAxis === 'time' ? 't ' : state.xAxis + ' ') + fmt(row[1][0]) }), el('td', { text: fmt(row[1][1]) })]));
      });
      tip.appendChild(table);
      tip.hidden = false;
      tip.style.left = ev.clientX + 14 + 'px';
      tip.style.top = ev.clientY + 10 + 'px';
    };
    box.onmouseleave = function () { cursor.setAttribute('visibility', 'hidden'); $('tooltip').hidden = true; };
    return card;
  }

  // ---- confusion matrix and per-class table

  // per-class precision, recall, F1 and support from a confusion matrix (rows true, columns predicted), as sklearn's classification_report (0 where undefined)
  function perClass(matrix) {
    var n = matrix.length;
    var rows = [];
    var total = 0, correct = 0;
    for (var i = 0; i < n; i++) {
      var tp = matrix[i][i], support = 0, predicted = 0;
      for (var j = 0; j < n; j++) { support += matrix[i][j]; predicted += matrix[j][i]; }
      var p = predicted ? tp / predicted : 0, r = support ? tp / support : 0;
      rows.push({ precision: p, recall: r, f1: p + r ? (2 * p * r) / (p + r) : 0, support: support });
      total += support;
      correct += tp;
    }
    var mean = function (k, w) {
      var s = 0, d = 0;
      rows.forEach(function (row) { var weight = w ? row.support : 1; s += row[k] * weight; d += weight; });
      return d ? s / d : 0;
    };
    return {
      rows: rows,
      accuracy: total ? correct / total : 0,
      total: total,
      macro: { precision: mean('precision'), recall: mean('recall'), f1: mean('f1') },
      weighted: { precision: mean('precision', true), recall: mean('recall', true), f1: mean('f1', true) },
    };
  }
  window.finetorchDashboard.perClass = perClass;

  function matrixSources(run) {
    var list = [];
    run.epochs.forEach(function (e) { if (e.confusionMatrix) list.push({ key: 'epoch:' + e.epoch, label: 'epoch ' + (e.epoch + 1) + ' (val)' + (e.best ? ' *' : ''), matrix: e.confusionMatrix }); });
    run.evals.forEach(function (e, i) { if (e.confusionMatrix) list.push({ key: 'eval:' + i, label: e.split + ' (' + (e.checkpoint.split('/').slice(-2, -1)[0] || 'checkpoint') + ')', matrix: e.confusionMatrix }); });
    return list;
  }

  function renderMatrix() {
    var runSel = $('matrix-run');
    var ids = state.order.filter(function (id) { return state.runs[id].epochs.length || state.runs[id].evals.length; });
    if (!state.matrixRun || ids.indexOf(state.matrixRun) < 0) state.matrixRun = ids.filter(function (id) { return state.selected[id]; })[0] || ids[0] || null;
    syncOptions(runSel, ids.map(function (id) { return [id, id]; }), state.matrixRun);
    var run = state.matrixRun && state.runs[state.matrixRun];
    var sources = run ? matrixSources(run) : [];
    var epochs = sources.filter(function (s) { return s.key.indexOf('epoch:') === 0; });
    var opts = [['last', 'latest epoch' + (epochs.length ? ' (' + epochs[epochs.length - 1].label + ')' : '')]].concat(sources.map(function (s) { return [s.key, s.label]; }));
    if (state.matrixChoice !== 'last' && !sources.some(function (s) { return s.key === state.matrixChoice; })) state.matrixChoice = 'last';
    syncOptions($('matrix-epoch'), opts, state.matrixChoice);
    var source = state.matrixChoice === 'last' ? epochs[epochs.length - 1] || sources[sources.length - 1] : sources.filter(function (s) { return s.key === state.matrixChoice; })[0];
    var box = $('matrix'), table = $('per-class');
    box.textContent = '';
    table.textContent = '';
    $('matrix-panel').dataset.source = source ? source.key : '';
    if (!source) {
      $('matrix-title').textContent = 'Confusion matrix';
      box.appendChild(el('p', { class: 'note', text: 'No evaluation yet: the matrix appears after the first epoch with validation data.' }));
      return;
    }
    $('matrix-title').textContent = 'Confusion matrix: ' + run.info.id + ', ' + source.label;
    var m = source.matrix;
    var classes = m.map(function (_, i) { return run.info.classes[i] || String(i); });
    var t = el('table', { class: 'matrix' });
    t.appendChild(el('tr', {}, [el('th', { class: 'axis-label', text: 'true \\ predicted' })].concat(classes.map(function (c) { return el('th', { text: c }); }))));
    m.forEach(function (row, i) {
      var sum = row.reduce(function (a, b) { return a + b; }, 0);
      t.appendChild(
        el('tr', {}, [el('th', { text: classes[i] })].concat(row.map(function (v, j) {
          var share = sum ? v / sum : 0;
          var td = el('td', { text: String(v), title: classes[i] + ' → ' + classes[j] + ': ' + v + ' (' + (share * 100).toFixed(1) + '% of the row)' });
          // row-normalised shade: blue on the diagonal, red off it
          td.style.background = i === j ? 'rgba(68,119,170,' + (0.08 + 0.8 * share).toFixed(3) + ')' : share ? 'rgba(238,102,119,' + (0.08 + 0.8 * share).toFixed(3) + ')' : '#f6f8fa';
          if (share > 0.55) td.style.color = '#fff';
          return td;
        }))),
      );
    });
    box.appendChild(t);
    var r = perClass(m);
    var pc = el('table', { class: 'per-class' });
    pc.appendChild(el('tr', {}, ['class', 'precision', 'recall', 'F1', 'support'].map(function (h) { return el('th', { text: h }); })));
    r.rows.forEach(function (row, i) {
      pc.appendChild(el('tr', { 'data-class': classes[i] }, [el('td', { text: classes[i] }), el('td', { text: fmt4(row.precision) }), el('td', { text: fmt4(row.recall) }), el('td', { text: fmt4(row.f1) }), el('td', { text: String(row.support) })]));
    });
    pc.appendChild(el('tr', { class: 'summary' }, [el('td', { text: 'accuracy' }), el('td'), el('td'), el('td', { text: fmt4(r.accuracy) }), el('td', { text: String(r.total) })]));
    pc.appendChild(el('tr', { class: 'summary' }, [el('td', { text: 'macro avg' }), el('td', { text: fmt4(r.macro.precision) }), el('td', { text: fmt4(r.macro.recall) }), el('td', { text: fmt4(r.macro.f1) }), el('td', { text: String(r.total) })]));
    pc.appendChild(el('tr', { class: 'summary' }, [el('td', { text: 'weighted avg' }), el('td', { text: fmt4(r.weighted.precision) }), el('td', { text: fmt4(r.weighted.recall) }), el('td', { text: fmt4(r.weighted.f1) }), el('td', { text: String(r.total) })]));
    table.appendChild(pc);
  }

  function syncOptions(select, options, value) {
    var key = JSON.stringify(options);
    if (select.dataset.key !== key) {
      select.textContent = '';
      options.forEach(function (o) { select.appendChild(el('option', { value: o[0], text: o[1] })); });
      select.dataset.key = key;
    }
    if (value !== null) select.value = value;
  }

  // ---- comparison table

  function bestEpoch(run) {
    var best = null;
    run.epochs.forEach(function (e) { if (e.best) best = e; });
    return best;
  }
  function renderComparison() {
    var box = $('comparison');
    box.textContent = '';
    var head = ['run', 'status', 'model', 'parameters', 'epochs', 'best (@ epoch)', 'val loss', 'val accuracy', 'test accuracy', 'test F1', 'time'];
    var t = el('table', { class: 'comparison' });
    t.appendChild(el('tr', {}, head.map(function (h) { return el('th', { text: h }); })));
    state.order.forEach(function (id) {
      var run = state.runs[id], info = run.info;
      var last = run.epochs[run.epochs.length - 1];
      var be = bestEpoch(run);
      var best = info.best ? info.best.metric + ' ' + fmt4(info.best.value) + ' @ ' + (info.best.epoch + 1) : be && be.val ? (be.val.entityF1 !== undefined ? 'entityF1 ' + fmt4(be.val.entityF1) : 'accuracy ' + fmt4(be.val.accuracy)) + ' @ ' + (be.epoch + 1) : '–';
      var sw = el('span', { class: 'swatch' });
      sw.style.background = run.color;
      var status = el('span', { class: 'status', 'data-status': info.status, text: info.status, title: info.error || '' });
      t.appendChild(
        el('tr', { 'data-run': id }, [
          el('td', {}, [sw, ' ' + id]),
          el('td', {}, [status]),
          el('td', { text: info.arch || '–' }),
          el('td', { text: info.parameters === null ? '–' : info.parameters.toLocaleString('en') }),
          el('td', { text: info.epochsDone + (info.epochsPlanned ? ' / ' + info.epochsPlanned : '') }),
          el('td', { text: best }),
          el('td', { text: last && last.val ? fmt4(last.val.loss) : '–' }),
          el('td', { text: last && last.val ? fmt4(last.val.accuracy) : '–' }),
          el('td', { text: info.test ? fmt4(info.test.accuracy) : '–' }),
          el('td', { text: info.test ? fmt4(info.test.f1Macro) : '–' }),
          el('td', { text: duration(info.seconds) }),
        ]),
      );
    });
    box.appendChild(t);
  }

  // ---- run list

  function renderRunList() {
    var list = $('run-list');
    var filter = null;
    try { filter = $('run-filter').value ? new RegExp($('run-filter').value, 'i') : null; } catch (e) { filter = null; }
    state.order.forEach(function (id) {
      var run = state.runs[id];
      var li = list.querySelector('li[data-run="' + CSS.escape(id) + '"]');
      if (!li) {
        var box = el('input', { type: 'checkbox' });
        box.addEventListener('change', function () { state.selected[id] = box.checked; render(); });
        var sw = el('span', { class: 'swatch' });
        sw.style.background = run.color;
        li = el('li', { 'data-run': id }, [el('label', { title: run.info.dir }, [box, sw, el('span', { class: 'name', text: id })]), el('span', { class: 'status' })]);
        list.appendChild(li);
      }
      li.querySelector('input').checked = !!state.selected[id];
      var st = li.querySelector('.status');
      st.dataset.status = run.info.status;
      st.textContent = run.info.status === 'running' && run.info.epochsPlanned ? 'epoch ' + Math.min(run.info.epochsDone + 1, run.info.epochsPlanned) + '/' + run.info.epochsPlanned : run.info.status;
      li.hidden = !!filter && !filter.test(id);
    });
  }

  // ---- render loop

  var pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; render(); });
  }
  function render() {
    $('empty').hidden = !state.ready || state.order.length > 0;
    renderRunList();
    var holder = $('charts');
    var cards = charts().map(drawChart);
    cards.forEach(function (card, i) { if (holder.children[i] !== card) holder.insertBefore(card, holder.children[i] || null); });
    while (holder.children.length > cards.length) holder.removeChild(holder.lastChild);
    renderMatrix();
    renderComparison();
    state.rendered = state.updates;
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('input[name="x"]').forEach(function (r) {
      r.addEventListener('change', function () { state.xAxis = r.value; render(); });
    });
    $('smoothing').addEventListener('input', function () {
      state.smoothing = Number($('smoothing').value);
      $('smoothing-value').textContent = state.smoothing.toFixed(2);
      render();
    });
    $('run-filter').addEventListener('input', function () {
      var f = null;
      try { f = $('run-filter').value ? new RegExp($('run-filter').value, 'i') : null; } catch (e) { f = null; }
      state.order.forEach(function (id) { state.selected[id] = !f || f.test(id); });
      render();
    });
    $('runs-all').addEventListener('click', function () { state.order.forEach(function (id) { state.selected[id] = true; }); render(); });
    $('runs-none').addEventListener('click', function () { state.order.forEach(function (id) { state.selected[id] = false; }); render(); });
    $('matrix-run').addEventListener('change', function () { state.matrixRun = $('matrix-run').value; state.matrixChoice = 'last'; render(); });
    $('matrix-epoch').addEventListener('change', function () { state.matrixChoice = $('matrix-epoch').value; render(); });
    window.addEventListener('resize', schedule);
    connect();
    render();
  });
})();
`;
