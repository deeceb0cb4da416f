// Draws grow.html's charts with uPlot from the JSON block #grow-data: peak memory, p95 and errors against
// rows on a log axis, one mark per run coloured by its verdict, and over the memory chart the fitted line
// (bytes per row) and the limit. Hovering one chart shows the same size on all three.
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("grow-data").textContent);
  var root = document.getElementById("charts");
  var MiB = 1024 * 1024;
  var VERDICTS = [
    {verdict: "pass", label: "held", colour: "#1e7d32"},
    {verdict: "fail", label: "broke", colour: "#b3261e"},
    {verdict: "inconclusive", label: "inconclusive", colour: "#a15c00"},
  ];
  var charts = [];
  var cursorSync = uPlot.sync("stackprobe-grow");
  var points = (data.points || []).filter(function (p) { return p.rows > 0; })
    .sort(function (a, b) { return a.rows - b.rows; });
  var fit = data.fit || {};
  var limit = data.target && data.target.memory_limit_bytes;

  function rowsText(v) {
    if (v == null) return "\u2013";
    if (v >= 1e6 && v % 1e6 === 0) return v / 1e6 + "m";
    if (v >= 1e3 && v % 1e3 === 0) return v / 1e3 + "k";
    return Math.round(v).toLocaleString("en");
  }

  function fixed(digits, unit) {
    return function (u, v) { return v == null ? "\u2013" : v.toFixed(digits) + unit; };
  }

  function figure(id, title, source) {
    var fig = document.createElement("figure");
    fig.className = "chart";
    fig.id = id;
    var caption = document.createElement("figcaption");
    var titleSpan = document.createElement("span");
    titleSpan.className = "title";
    titleSpan.textContent = title;
    caption.appendChild(titleSpan);
    var sourceSpan = document.createElement("span");
    sourceSpan.className = "source";
    sourceSpan.textContent = "source: " + source;
    caption.appendChild(sourceSpan);
    fig.appendChild(caption);
    root.appendChild(fig);
    return fig;
  }

  if (points.length === 0) {
    var none = document.createElement("p");
    none.className = "no-data";
    none.textContent = "no run was made";
    root.appendChild(none);
    window.stackprobeGrowCharts = charts;
    document.body.dataset.chartsReady = "0";
    return;
  }

  // The x values: every size run, and between the smallest and the largest enough log-spaced ones for the
  // fitted straight line to be drawn as the curve it is on a log axis.
  var lo = points[0].rows;
  var hi = points[points.length - 1].rows;
  var xsSet = {};
  points.forEach(function (p) { xsSet[p.rows] = true; });
  if (hi > lo) {
    for (var i = 0; i <= 48; i++) xsSet[Math.round(lo * Math.pow(hi / lo, i / 48))] = true;
  }
  var xs = Object.keys(xsSet).map(Number).sort(function (a, b) { return a - b; });
  var atX = {};
  points.forEach(function (p) { atX[p.rows] = p; });

  // One series per verdict, so each mark's colour says whether that size held.
  function byVerdict(value) {
    return VERDICTS.map(function (v) {
      return xs.map(function (x) {
        var p = atX[x];
        return p && p.verdict === v.verdict ? value(p) : null;
      });
    });
  }

  function markSeries(unit, digits) {
    return VERDICTS.map(function (v) {
      return {
        label: v.label,
        stroke: v.colour,
        fill: v.colour,
        width: 0,
        paths: function () { return null; },
        points: {show: true, size: 10, stroke: v.colour, fill: v.colour},
        value: fixed(digits, unit),
      };
    });
  }

  function chart(id, title, source, ys, series, yLabel) {
    var fig = figure(id, title, source);
    var opts = {
      width: Math.max(root.clientWidth - 8, 320),
      height: 240,
      scales: {
        x: hi > lo ? {time: false, distr: 3, log: 10} : {time: false, range: [lo / 2, lo * 2]},
        y: {range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; }},
      },
      series: [{label: "rows", value: function (u, v) { return rowsText(v); }}].concat(series),
      axes: [
        // A log axis leaves the ticks it does not label as null.
        {label: "rows", values: function (u, ticks) {
          return ticks.map(function (v) { return v == null ? "" : rowsText(v); });
        }},
        {label: yLabel, size: 64},
      ],
      cursor: {sync: {key: cursorSync.key}},
    };
    charts.push(new uPlot(opts, [xs].concat(ys), fig));
  }

  function mib(b) { return b == null ? null : b / MiB; }

  // Peak memory: the marks, the fitted line over the sizes it was fitted on, the limit dashed.
  var memoryYs = byVerdict(function (p) { return mib(p.peak_bytes); });
  var memorySeries = markSeries(" MiB", 1);
  var memorySource = "each run's memory.peak_bytes (its peak_source)";
  if (fit.bytes_per_row != null && fit.intercept_bytes != null) {
    memoryYs.push(xs.map(function (x) { return mib(fit.intercept_bytes + fit.bytes_per_row * x); }));
    memorySeries.push({label: "fit: " + fit.bytes_per_row.toFixed(1) + " B/row", stroke: "#000000", width: 1.5,
      dash: [10, 5], points: {show: false}, value: fixed(1, " MiB")});
    memorySource += "; line: Theil-Sen fit of the runs with no OOM kill or restart";
  }
  if (limit) {
    memoryYs.push(xs.map(function () { return mib(limit); }));
    memorySeries.push({label: "limit", stroke: "#d62728", width: 1.5, dash: [6, 4], points: {show: false},
      value: fixed(1, " MiB")});
  }
  chart("chart-memory", "Peak memory of " + data.target.service + " (MiB)", memorySource, memoryYs, memorySeries,
    "MiB");

  chart("chart-p95", "p95 latency (ms)", "each run's latency_ms.p95 (Locust, whole run)",
    byVerdict(function (p) { return p.p95_ms; }), markSeries(" ms", 1), "ms");

  chart("chart-errors", "Errors (% of requests)", "each run's requests.failure_ratio (Locust)",
    byVerdict(function (p) { return p.error_ratio == null ? null : p.error_ratio * 100; }), markSeries("%", 2),
    "%");

  window.addEventListener("resize", function () {
    var width = Math.max(root.clientWidth - 8, 320);
    charts.forEach(function (u) { u.setSize({width: width, height: 240}); });
  });
  // For whoever opens the devtools console (and the browser test): the uPlot instances.
  window.stackprobeGrowCharts = charts;
  document.body.dataset.chartsReady = String(charts.length);
})();
