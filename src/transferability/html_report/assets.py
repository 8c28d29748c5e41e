"""The page's inline assets: the style sheet (readable from 390 px up, tables scrolling in
their wrappers) and the few lines of JavaScript that sort a table by a click on a header."""

__all__ = ["CSS", "JS"]

CSS = """
:root{--fg:#1c2330;--muted:#5a6474;--line:#dde2ea;--soft:#f4f6f9;--link:#1f5fbf}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:#fff;-webkit-text-size-adjust:100%;text-size-adjust:100%}
header,main{max-width:1180px;margin:0 auto;padding:0 24px}
h1{font-size:1.6rem;margin:20px 0 2px}h2{font-size:1.3rem;margin:0 0 2px}
h3{font-size:1.02rem;margin:22px 0 6px}
a{color:var(--link)}code{font-size:.85em;overflow-wrap:anywhere}
section{border-top:2px solid var(--line);padding:18px 0 8px}
.meta,.note,figcaption{color:var(--muted);font-size:.88rem}
.warn{color:#b00020}
nav ol{margin:6px 0 16px;padding-left:1.3em}
.scroll{overflow-x:auto;margin:6px 0 14px;border:1px solid var(--line);border-radius:6px;
max-width:100%}
.scroll.bare{border:0;margin:0}
table{border-collapse:collapse;font-size:.86rem;min-width:100%}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
tbody tr:last-child>*{border-bottom:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
thead th{background:var(--soft);font-weight:600}
table.kv th{background:var(--soft);font-weight:500;width:1%}
table.kv td{white-space:normal;overflow-wrap:anywhere}
th.sortable{cursor:pointer;user-select:none}
th.sortable::after{content:" ↕";color:#a3acba}
th[aria-sort=ascending]::after{content:" ▲";color:var(--fg)}
th[aria-sort=descending]::after{content:" ▼";color:var(--fg)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:14px 18px;
margin:6px 0 14px}
figure{margin:6px 0 14px;min-width:0}
svg{display:block;width:100%;height:auto;max-width:100%}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
svg .t{font-weight:600;font-size:12px}svg .pl{font-size:9px;fill:#444}
svg .gl{stroke:#eceff3}svg .ax{stroke:#8d96a5;fill:none}
svg.heat text{font-size:11px}
.legend{display:block}.legend span{display:inline-block;margin-right:12px;white-space:nowrap}
.sw{display:inline-block;width:16px;height:0;margin-right:5px;vertical-align:middle;
border-top:4px solid currentColor}
.sw.dash{border-top:2px dashed currentColor}
.scale{display:flex;align-items:center;gap:6px;font-size:.8rem;color:var(--muted);margin:-6px 0 8px}
.scale .bar{display:inline-block;width:140px;height:10px;border-radius:2px;
background:linear-gradient(90deg,#440154,#3b528b,#21918c,#5ec962,#fde725)}
details{margin:6px 0 12px}summary{cursor:pointer;color:var(--link)}
pre{background:var(--soft);padding:8px;border-radius:6px;overflow-x:auto;font-size:.8rem}
.claims li{margin:4px 0}
.prov{margin-bottom:18px}
@media (max-width:600px){header,main{padding:0 12px}body{font-size:14px}
h1{font-size:1.3rem}h2{font-size:1.12rem}.grid{grid-template-columns:1fr}}
"""

JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.classList.add("sortable");
    th.tabIndex = 0;
    function key(row) {
      var c = row.cells[col];
      if (!c) return "";
      return c.hasAttribute("data-v") ? c.getAttribute("data-v") : c.textContent.trim();
    }
    function sort() {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var keys = rows.map(key);
      var numeric = keys.every(function (k) { return k === "" || isFinite(Number(k)); });
      var down = th.getAttribute("aria-sort") ? th.getAttribute("aria-sort") === "ascending"
                                              : numeric;
      var order = rows.map(function (_, i) { return i; }).sort(function (a, b) {
        var x = keys[a], y = keys[b];
        if (x === "" || y === "") return (x === "") - (y === "");
        var d = numeric ? Number(x) - Number(y) : x.localeCompare(y, undefined, {numeric: true});
        return down ? -d : d;
      });
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", down ? "descending" : "ascending");
      order.forEach(function (i) { body.appendChild(rows[i]); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
    });
  });
});
"""
