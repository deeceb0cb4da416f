// Draws the report's charts with uPlot from the JSON block #report-data, on one shared time axis:
// every chart spans the same seconds, zooming one zooms all, and the cursor moves on all together.
// Each chart's caption names where its figures come from.
(function () {
  "use strict";

  var report = JSON.parse(document.getElementById("report-data").textContent);
  var series = report.series || {};
  var load = series.load || {t: []};
  var containers = series.containers || {};
  var events = report.events || [];
  // Faults that were sent to the engine: each a band from its start to its end on every chart.
  var faults = (report.faults || []).filter(function (f) { return f.started != null; });
  var clientErrors = report.client_errors || {};
  var memory = report.memory || {};
  var MiB = 1024 * 1024;
  var PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
  var EVENT_LABELS = {oom: "OOM", die: "die", restart: "restart", start: "start"};
  var root = document.getElementById("charts");
  // Source names as the page's tables spell them (set by page.py).
  var SAMPLED_SOURCE = root.dataset.sampledSource || "docker stats samples";
  var KERNEL_SOURCE = root.dataset.kernelPeakSource || "cgroup high-water mark";
  var LOAD_SOURCE = load.source || "source not recorded";
  var charts = [];
  var syncingScale = false;
  var cursorSync = uPlot.sync("stackprobe");

  // The shared extent: from the earliest to the latest t of any series, event or client error.
  var tMin = Infinity;
  var tMax = -Infinity;
  function widen(values) {
    for (var i = 0; i < values.length; i++) {
      if (values[i] == null) continue;
      if (values[i] < tMin) tMin = values[i];
      if (values[i] > tMax) tMax = values[i];
    }
  }
  widen(load.t || []);
  Object.keys(containers).forEach(function (name) { widen(containers[name].t || []); });
  widen(events.map(function (e) { return e.t; }));
  (clientErrors.failures || []).concat(clientErrors.exceptions || []).forEach(function (row) {
    widen([row.first_t, row.last_t]);
  });
  faults.forEach(function (f) { widen([f.started, f.ended]); });

  // Containers (keyed by container name; replicas give one each) in a stable order: the service under
  // test first, then by service, then by name.
  var target = report.target && report.target.service;
  function serviceOf(name) { return containers[name].service || name; }
  function compare(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
  var names = Object.keys(containers).sort(function (a, b) {
    var sa = serviceOf(a);
    var sb = serviceOf(b);
    return (sb === target) - (sa === target) || compare(sa, sb) || compare(a, b);
  });
  // One colour per container, the same on the memory and the CPU charts.
  var colour = {};
  names.forEach(function (name, i) { colour[name] = PALETTE[i % PALETTE.length]; });
  // Services in that order, each with its containers.
  var services = [];
  var byService = {};
  names.forEach(function (name) {
    var service = serviceOf(name);
    if (!byService[service]) {
      byService[service] = [];
      services.push(service);
    }
    byService[service].push(name);
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

  function faultWords(f) {
    var words = f.action + " " + f.service + "@" + f.at + "s";
    if (f["for"] != null) words += " for " + f["for"] + "s";
    words += ": t=" + f.started.toFixed(1) + (f.ended == null ? "" : " to " + f.ended.toFixed(1)) + " s";
    if (f.kernel) words += "; kernel: " + f.kernel;
    if (!f.done) words += "; not done: " + (f.error || "no reason recorded");
    if (f.recovery && f.recovery.summary) words += "; " + f.recovery.summary;
    return words;
  }

  // Faults as DOM bands over the plot, from each fault's start to its end (at least 2 px wide), with a
  // lighter band from its recovery reference to where the SLO held again.
  function faultBands() {
    var layer;
    return {
      hooks: {
        init: function (u) {
          layer = document.createElement("div");
          layer.className = "bands";
          u.over.appendChild(layer);
          faults.forEach(function (f) {
            var band = document.createElement("div");
            band.className = "fault-band fault-" + f.action + (f.done ? "" : " fault-not-done");
            band.dataset.from = String(f.started);
            band.dataset.to = String(f.ended == null ? f.started : f.ended);
            band.title = faultWords(f);
            var label = document.createElement("span");
            label.className = "fault-label";
            label.textContent = f.action + " " + f.service;
            band.appendChild(label);
            layer.appendChild(band);
            var r = f.recovery;
            if (r && r.from_t != null && r.recovered_s != null) {
              var healing = document.createElement("div");
              healing.className = "recovery-band";
              healing.dataset.from = String(r.from_t);
              healing.dataset.to = String(r.from_t + r.recovered_s);
              healing.title = f.action + " " + f.service + ": " + r.summary;
              layer.appendChild(healing);
            }
          });
        },
        draw: function (u) {
          var width = u.over.clientWidth;
          Array.prototype.forEach.call(layer.children, function (band) {
            var left = u.valToPos(Number(band.dataset.from), "x");
            var right = u.valToPos(Number(band.dataset.to), "x");
            var inside = right >= 0 && left <= width;
            band.style.display = inside ? "" : "none";
            if (!inside) return;
            left = Math.max(0, left);
            right = Math.min(width, right);
            band.style.left = left + "px";
            band.style.width = Math.max(2, right - left) + "px";
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

  function noData(fig) {
    var p = document.createElement("p");
    p.className = "no-data";
    p.textContent = "no data";
    fig.appendChild(p);
  }

  // tables: [[xs, ...ys], ...] of samples; lines: one uPlot series each ys; level: optional [ys, lines] of
  // constant values drawn across the whole extent (limits, peaks), only where there are samples.
  function chart(id, title, source, tables, lines, yDigits, yLabel, level) {
    var fig = figure(id, title, source);
    var empty = tables.every(function (table) { return table[0].length === 0; });
    if (empty) {
      noData(fig);
      return fig;
    }
    if (level && level[0].length) {
      tables = tables.concat([[[tMin, tMax]].concat(level[0].map(function (v) { return [v, v]; }))]);
      lines = lines.concat(level[1]);
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
      plugins: [faultBands(), eventMarkers()],
      hooks: {setScale: [keepScalesTogether]},
    };
    charts.push(new uPlot(opts, aligned(tables), fig));
    return fig;
  }

  var loadT = load.t || [];
  chart("chart-requests", "Requests and failures per second", LOAD_SOURCE,
    [[loadT, load.rps || [], load.failures_per_s || []]],
    [
      {label: "requests/s", stroke: "#1f77b4", width: 2, value: fixed(1, "/s")},
      {label: "failures/s", stroke: "#d62728", width: 2, value: fixed(1, "/s")},
    ], 0, "per second");

  chart("chart-latency", "Latency (ms)", LOAD_SOURCE,
    [[loadT, load.p50_ms || [], load.p95_ms || [], load.p99_ms || []]],
    [
      {label: "p50", stroke: "#2ca02c", width: 2, value: fixed(0, " ms")},
      {label: "p95", stroke: "#ff7f0e", width: 2, value: fixed(0, " ms")},
      {label: "p99", stroke: "#d62728", width: 2, value: fixed(0, " ms")},
    ], 0, "ms");

  function mib(b) { return b == null ? null : b / MiB; }

  // The memory trend of the service under test (report.memory.trend): its fitted line from the end of the
  // warm-up to the load's end, inside the shared extent; null when there is none to draw.
  var trend = memory.trend;
  function trendTable() {
    if (!trend || trend.slope_mib_per_min == null || trend.intercept_bytes == null) return null;
    var loadEnd = (report.load && report.load.duration_s) || tMax;
    var x0 = Math.max(trend.warmup_s || 0, tMin);
    var x1 = Math.min(loadEnd, tMax);
    if (!(x1 > x0)) return null;
    var perSecond = trend.slope_mib_per_min * MiB / 60;
    return [[x0, x1], [mib(trend.intercept_bytes + perSecond * x0), mib(trend.intercept_bytes + perSecond * x1)]];
  }

  // Memory: one chart per service, one line per container of it (replicas), its limit(s) dashed, and on
  // the service under test the kernel's own high-water mark where it was read.
  if (services.length === 0) {
    noData(figure("chart-memory", "Memory (MiB)", SAMPLED_SOURCE));
  }
  services.forEach(function (service, i) {
    var members = byService[service];
    var tables = members.map(function (name) {
      var c = containers[name];
      return [c.t || [], (c.memory_bytes || []).map(mib)];
    });
    var lines = members.map(function (name) {
      return {label: name, stroke: colour[name], width: 2, value: fixed(1, " MiB")};
    });
    var limited = members.filter(function (name) { return containers[name].limit_bytes != null; });
    var limits = limited.map(function (name) { return containers[name].limit_bytes; });
    var oneLimit = limits.every(function (b) { return b === limits[0]; });
    var levels = [];
    var levelLines = [];
    (oneLimit ? limited.slice(0, 1) : limited).forEach(function (name) {
      levels.push(mib(containers[name].limit_bytes));
      levelLines.push({label: oneLimit ? "limit" : "limit of " + name, stroke: "#d62728", width: 1.5,
        dash: [6, 4], value: fixed(1, " MiB")});
    });
    var source = SAMPLED_SOURCE + ", one line per container";
    if (service === target && memory.peak_kernel_bytes != null) {
      levels.push(mib(memory.peak_kernel_bytes));
      levelLines.push({label: "kernel peak", stroke: "#ff7f0e", width: 1.5, dash: [2, 3],
        value: fixed(1, " MiB")});
      source += "; kernel peak: " + KERNEL_SOURCE;
    }
    var fitted = service === target ? trendTable() : null;
    if (fitted) {
      tables = tables.concat([fitted]);
      lines = lines.concat([{label: "trend", stroke: "#000000", width: 1.5, dash: [10, 5],
        value: fixed(1, " MiB")}]);
    }
    var title = "Memory of " + service + " (MiB)" +
      (members.length > 1 ? ", " + members.length + " containers" : "") +
      (limited.length === 0 ? ", no limit" : "");
    var fig = chart("chart-memory-" + i, title, source, tables, lines, 0, "MiB", [levels, levelLines]);
    if (service === target && root.dataset.trend) {
      var trendSpan = document.createElement("span");
      trendSpan.className = "trend";
      trendSpan.textContent = root.dataset.trend;
      fig.querySelector("figcaption").appendChild(trendSpan);
    }
  });

  chart("chart-cpu", "CPU (% of one core)", SAMPLED_SOURCE + ", one line per container",
    names.map(function (name) { return [containers[name].t || [], containers[name].cpu_percent || []]; })
      .concat(names.length ? [] : [[[]]]),
    names.map(function (name) {
      return {label: name, stroke: colour[name], width: 2, value: fixed(1, "%")};
    }), 0, "%");

  window.addEventListener("resize", function () {
    var width = Math.max(root.clientWidth - 8, 320);
    charts.forEach(function (u) { u.setSize({width: width, height: 220}); });
  });
  // For whoever opens the devtools console (and the browser test): the uPlot instances.
  window.stackprobeCharts = charts;
  document.body.dataset.chartsReady = String(charts.length);
})();
