// Draws the report's charts with uPlot from the JSON block #report-data, on one shared time axis:
// every chart spans the same seconds, zooming one zooms all, and the cursor moves on all together.
(function () {
  "use strict";

  var report = JSON.parse(document.getElementById("report-data").textContent);
  var series = report.series || {};
  var load = series.load || {t: []};
  var containers = series.containers || {};
  var events = report.events || [];
  var MiB = 1024 * 1024;
  var PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
  var EVENT_LABELS = {oom: "OOM", die: "die", restart: "restart", start: "start"};
  var root = document.getElementById("charts");
  var charts = [];
  var syncingScale = false;
  var cursorSync = uPlot.sync("stackprobe");

  // The shared extent: from the earliest to the latest t of any series or event.
  var tMin = Infinity;
  var tMax = -Infinity;
  function widen(values) {
    for (var i = 0; i < values.length; i++) {
      if (values[i] < tMin) tMin = values[i];
      if (values[i] > tMax) tMax = values[i];
    }
  }
  widen(load.t || []);
  Object.keys(containers).forEach(function (name) { widen(containers[name].t || []); });
  widen(events.map(function (e) { return e.t; }));

  // Containers in a stable order, the service under test first.
  var names = Object.keys(containers).sort(function (a, b) {
    var target = report.target && report.target.service;
    return (b === target) - (a === target) || (a < b ? -1 : a > b ? 1 : 0);
  });

  function fixed(digits, unit) {
    return function (u, v) { return v == null ? "\u2013" : v.toFixed(digits) + unit; };
  }

  function axisValues(digits) {
    return function (u, ticks) { return ticks.map(function (v) { return v.toFixed(digits); }); };
  }

  // Join tables [[xs, ...ys], ...] on x and add the shared extent, so every chart spans it.
  function aligned(tables) {
    var all = tables.slice();
    if (tMin <= tMax) all.push([[tMin, tMax]]);
    return uPlot.join(all);
  }

  // Events as DOM markers over the plot: a line and a flag with the details as a tooltip.
  function eventMarkers() {
    var layer;
    return {
      hooks: {
        init: function (u) {
          layer = document.createElement("div");
          layer.className = "markers";
          u.over.appendChild(layer);
          events.forEach(function (e) {
            var marker = document.createElement("div");
            marker.className = "event-marker event-" + e.action;
            marker.dataset.t = String(e.t);
            var flag = document.createElement("span");
            flag.className = "flag";
            flag.textContent = EVENT_LABELS[e.action] || e.action;
            marker.title = e.action + " " + e.service + " (" + e.container + ") at " + e.t.toFixed(1) + " s" +
              (e.exit_code == null ? "" : ", exit code " + e.exit_code);
            marker.appendChild(flag);
            layer.appendChild(marker);
          });
        },
        draw: function (u) {
          var width = u.over.clientWidth;
          var rowEnds = [];  // right edge of the last flag in each row, so close events do not overlap
          Array.prototype.forEach.call(layer.children, function (marker) {
            var x = u.valToPos(Number(marker.dataset.t), "x");
            var inside = x >= 0 && x <= width;
            marker.style.display = inside ? "" : "none";
            marker.style.left = x + "px";
            if (!inside) return;
            var flag = marker.firstChild;
            var row = 0;
            while (row < rowEnds.length && rowEnds[row] > x) row++;
            rowEnds[row] = x + flag.offsetWidth + 4;
            flag.style.top = row * 16 + "px";
          });
        },
      },
    };
  }

  function keepScalesTogether(u, key) {
    if (key !== "x" || syncingScale) return;
    syncingScale = true;
    charts.forEach(function (other) {
      if (other !== u) other.setScale("x", {min: u.scales.x.min, max: u.scales.x.max});
    });
    syncingScale = false;
  }

  function figure(id, title) {
    var fig = document.createElement("figure");
    fig.className = "chart";
    fig.id = id;
    var caption = document.createElement("figcaption");
    caption.textContent = title;
    fig.appendChild(caption);
    root.appendChild(fig);
    return fig;
  }

  function noData(fig) {
    var p = document.createElement("p");
    p.className = "no-data";
    p.textContent = "no data";
    fig.appendChild(p);
  }

  function chart(id, title, tables, lines, yDigits, yLabel) {
    var fig = figure(id, title);
    var empty = tables.every(function (table) { return table[0].length === 0; });
    if (empty) {
      noData(fig);
      return;
    }
    var opts = {
      width: Math.max(root.clientWidth - 8, 320),
      height: 220,
      scales: {x: {time: false}},
      series: [{label: "t", value: fixed(1, " s")}].concat(lines),
      axes: [
        {label: "seconds since load start", values: axisValues(0)},
        {label: yLabel, size: 64, values: axisValues(yDigits)},
      ],
      cursor: {sync: {key: cursorSync.key}},
      plugins: [eventMarkers()],
      hooks: {setScale: [keepScalesTogether]},
    };
    charts.push(new uPlot(opts, aligned(tables), fig));
  }

  var loadT = load.t || [];
  chart("chart-requests", "Requests and failures per second",
    [[loadT, load.rps || [], load.failures_per_s || []]],
    [
      {label: "requests/s", stroke: "#1f77b4", width: 2, value: fixed(1, "/s")},
      {label: "failures/s", stroke: "#d62728", width: 2, value: fixed(1, "/s")},
    ], 0, "per second");

  chart("chart-latency", "Latency (ms)",
    [[loadT, load.p50_ms || [], load.p95_ms || [], load.p99_ms || []]],
    [
      {label: "p50", stroke: "#2ca02c", width: 2, value: fixed(0, " ms")},
      {label: "p95", stroke: "#ff7f0e", width: 2, value: fixed(0, " ms")},
      {label: "p99", stroke: "#d62728", width: 2, value: fixed(0, " ms")},
    ], 0, "ms");

  if (names.length === 0) {
    noData(figure("chart-memory", "Memory (MiB)"));
  }
  names.forEach(function (name, i) {
    var c = containers[name];
    var t = c.t || [];
    var memory = (c.memory_bytes || []).map(function (b) { return b == null ? null : b / MiB; });
    var columns = [t, memory];
    var lines = [{label: "in use", stroke: PALETTE[i % PALETTE.length], width: 2, value: fixed(1, " MiB")}];
    if (c.limit_bytes != null) {
      columns.push(t.map(function () { return c.limit_bytes / MiB; }));
      lines.push({label: "limit", stroke: "#d62728", width: 1.5, dash: [6, 4], value: fixed(1, " MiB")});
    }
    chart("chart-memory-" + i, "Memory of " + name + " (MiB)" + (c.limit_bytes == null ? ", no limit" : ""),
      [columns], lines, 0, "MiB");
  });

  chart("chart-cpu", "CPU (% of one core)",
    names.map(function (name) { return [containers[name].t || [], containers[name].cpu_percent || []]; })
      .concat(names.length ? [] : [[[]]]),
    names.map(function (name, i) {
      return {label: name, stroke: PALETTE[i % PALETTE.length], width: 2, value: fixed(1, "%")};
    }), 0, "%");

  window.addEventListener("resize", function () {
    var width = Math.max(root.clientWidth - 8, 320);
    charts.forEach(function (u) { u.setSize({width: width, height: 220}); });
  });
  // For whoever opens the devtools console (and the browser test): the uPlot instances.
  window.stackprobeCharts = charts;
  document.body.dataset.chartsReady = String(charts.length);
})();
