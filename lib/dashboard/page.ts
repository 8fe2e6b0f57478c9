// The dashboard's page (served at /): the layout; dashboard.js fills it in
// from /api/stream and dashboard.css styles it. Kept as a string module so it
// ships in dist/ with the compiled code.
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>finetorch dashboard</title>
<link rel="stylesheet" href="dashboard.css">
<script src="dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>finetorch <span>dashboard</span></h1>
  <span id="connection" class="connection" data-state="connecting">connecting…</span>
</header>
<div class="layout">
  <aside>
    <section>
      <h2>Runs</h2>
      <input id="run-filter" type="search" placeholder="filter runs (regex)" spellcheck="false">
      <div class="run-buttons"><button id="runs-all" type="button">all</button><button id="runs-none" type="button">none</button></div>
      <ul id="run-list"></ul>
    </section>
    <section>
      <h2>Horizontal axis</h2>
      <div class="choices" id="x-axis">
        <label><input type="radio" name="x" value="step" checked> step</label>
        <label><input type="radio" name="x" value="epoch"> epoch</label>
        <label><input type="radio" name="x" value="time"> time</label>
      </div>
    </section>
    <section>
      <h2>Smoothing <output id="smoothing-value">0.6</output></h2>
      <input id="smoothing" type="range" min="0" max="0.99" step="0.01" value="0.6">
    </section>
    <section>
      <h2>Confusion matrix</h2>
      <label class="field">run <select id="matrix-run"></select></label>
      <label class="field">epoch <select id="matrix-epoch"></select></label>
    </section>
  </aside>
  <main>
    <p id="empty" class="empty" hidden>No runs yet: the page fills in when a run writes events.jsonl.</p>
    <section id="charts" class="charts"></section>
    <section class="panel" id="matrix-panel">
      <h2 id="matrix-title">Confusion matrix</h2>
      <div class="matrix-row">
        <div id="matrix"></div>
        <div id="per-class"></div>
      </div>
    </section>
    <section class="panel">
      <h2>Run comparison</h2>
      <div id="comparison"></div>
    </section>
  </main>
</div>
<div id="tooltip" class="tooltip" hidden></div>
</body>
</html>
`;
