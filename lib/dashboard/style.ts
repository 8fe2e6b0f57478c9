// The dashboard page's style sheet (served as /dashboard.css).
export const PAGE_STYLE = `
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa; --card: #fff; --accent: #e8590c; font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; font-size: 13px; color: var(--fg); }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); }
header { display: flex; align-items: center; justify-content: space-between; padding: 8px 16px; background: #24292f; color: #fff; }
header h1 { margin: 0; font-size: 16px; font-weight: 600; }
header h1 span { font-weight: 400; color: #ffb37a; }
.connection { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #57606a; }
.connection[data-state="live"] { background: #1a7f37; }
.connection[data-state="lost"] { background: #cf222e; }
.layout { display: grid; grid-template-columns: 230px minmax(0, 1fr); gap: 12px; padding: 12px; align-items: start; }
aside { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px; position: sticky; top: 12px; }
aside section + section { margin-top: 14px; border-top: 1px solid var(--line); padding-top: 10px; }
h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 6px; font-weight: 600; }
input[type="search"] { width: 100%; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
input[type="range"] { width: 100%; }
.run-buttons { margin: 6px 0; display: flex; gap: 4px; }
button { font: inherit; font-size: 12px; padding: 2px 8px; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); cursor: pointer; }
#run-list { list-style: none; margin: 0; padding: 0; max-height: 40vh; overflow: auto; }
#run-list li { display: flex; align-items: center; gap: 6px; padding: 2px 0; }
#run-list li[hidden] { display: none; }
#run-list label { display: flex; align-items: center; gap: 6px; flex: 1; min-width: 0; cursor: pointer; }
#run-list .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.swatch { width: 10px; height: 10px; border-radius: 2px; flex: none; display: inline-block; }
.status { font-size: 10px; padding: 0 5px; border-radius: 8px; background: var(--bg); color: var(--muted); border: 1px solid var(--line); white-space: nowrap; }
.status[data-status="running"] { color: #0969da; border-color: #0969da; }
.status[data-status="ok"] { color: #1a7f37; border-color: #1a7f37; }
.status[data-status="error"], .status[data-status="diverged"] { color: #cf222e; border-color: #cf222e; }
.choices { display: flex; gap: 10px; }
.field { display: flex; align-items: center; justify-content: space-between; gap: 6px; margin: 4px 0; }
.field select { flex: 1; min-width: 0; font: inherit; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px; }
.chart, .panel { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.panel { margin-top: 12px; overflow-x: auto; }
.panel h2 { text-transform: none; letter-spacing: 0; font-size: 14px; color: var(--fg); }
.chart-head { display: flex; justify-content: space-between; align-items: center; }
.chart-head h3 { margin: 0; font-size: 13px; font-weight: 600; }
.chart-head button[aria-pressed="true"] { background: #ddf4ff; border-color: #54aeff; }
.chart svg { display: block; width: 100%; height: 230px; }
.chart .legend { font-size: 11px; color: var(--muted); display: flex; flex-wrap: wrap; gap: 2px 12px; min-height: 14px; }
.chart .legend svg { width: 26px; height: 8px; display: inline; vertical-align: middle; }
svg text { font-size: 10px; fill: var(--muted); }
svg .grid { stroke: #eaeef2; }
svg .axis { stroke: var(--line); }
svg .cursor { stroke: #8c959f; stroke-dasharray: 3 3; }
.tooltip { position: fixed; pointer-events: none; background: rgba(255,255,255,.96); border: 1px solid var(--line); border-radius: 4px; padding: 4px 6px; font-size: 11px; box-shadow: 0 2px 6px rgba(0,0,0,.12); z-index: 10; }
.tooltip td { padding: 0 4px; }
.matrix-row { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 8px; text-align: right; border-bottom: 1px solid #eaeef2; white-space: nowrap; }
th { font-weight: 600; color: var(--muted); }
th:first-child, td:first-child { text-align: left; }
table.matrix td { text-align: center; min-width: 36px; border: 1px solid #fff; }
table.matrix th.axis-label { color: var(--fg); font-weight: 400; font-style: italic; }
table.comparison th, table.comparison td { padding: 3px 6px; }
tr.summary td { border-top: 1px solid var(--line); color: var(--muted); }
.empty { color: var(--muted); padding: 20px; background: var(--card); border: 1px dashed var(--line); border-radius: 6px; }
.note { color: var(--muted); font-size: 12px; }
`;
