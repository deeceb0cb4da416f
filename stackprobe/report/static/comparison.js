// Draws a sweep's or a fit's charts with uPlot from the JSON block #comparison-data: each run is one mark
// at its limit (x) and its figure (y), coloured by its verdict, and links to that run's report.html.
// uPlot draws the axes, the grid and the diagonal peak = limit; the marks are DOM elements over the plot,
// placed with the chart's own scales on every redraw, so hovering shows the run and clicking opens it.
(function () {
  "use strict";

  var doc = JSON.parse(document.getElementById("comparison-data").textContent).doc;
  var root = document.getElementById("charts");
  var x = doc.x;
  var group = doc.group;
  var runs = doc.runs || [];
  var lines = doc.lines || [];
  var charts = [];
  var MARK_SPREAD_PX = 7;

  function xOf(run) {
    var v = run[x.field];
    return v == null ? null : v / x.divisor;
  }

  function yOf(run, mark) {
    var v = run[mark.field];
    return v == null ? null : v * mark.scale;
  }

  // The x extent: every run's limit and the fit's own lines, with a little room on each side. A rule's
  // line (VPA-style, KRR-style) may lie far off, e.g. at VPA's 250 MiB floor: it is pinned to the edge.
  var own = lines.filter(function (l) { return l.kind !== "rule"; });
  var xs = runs.map(xOf).concat(own.map(function (l) { return l.x; })).filter(function (v) { return v != null; });
  var xMin = xs.length ? Math.min.apply(null, xs) : 0;
  var xMax = xs.length ? Math.max.apply(null, xs) : 1;
  var pad = (xMax - xMin) * 0.06 || Math.max(Math.abs(xMax) * 0.1, 1);
  xMin = Math.max(0, xMin - pad);
  xMax = xMax + pad;

  // Runs at the same limit spread a little sideways: by their group (the other limit of a grid), then repeat.
  var repeats = Math.max.apply(null, runs.map(function (r) { return r.repeat || 1; }).concat([1]));
  var groups = group ? group.values : [null];
  function offset(run) {
    var g = group ? Math.max(0, groups.indexOf(run[group.field])) : 0;
    var byGroup = (g - (groups.length - 1) / 2) * MARK_SPREAD_PX * Math.max(repeats, 1);
    return byGroup + ((run.repeat || 1) - 1 - (repeats - 1) / 2) * MARK_SPREAD_PX;
  }

  function describe(run) {
    var parts = [run.label + ": " + run.verdict];
    if (run.rps != null) parts.push(run.rps.toFixed(1) + " req/s");
    if (run.p95_ms != null) parts.push("p95 " + run.p95_ms.toFixed(0) + " ms");
    if (run.failure_ratio != null) parts.push("errors " + (run.failure_ratio * 100).toFixed(2) + "%");
    if (run.peak_bytes != null) parts.push("peak " + (run.peak_bytes / 1048576).toFixed(1) + " MiB");
    if (run.oom_kills) parts.push(run.oom_kills + " OOM kill(s)");
    return parts.join(", ");
  }

  function marksPlugin(spec) {
    var layer;
    return {
      hooks: {
        init: function (u) {
          layer = document.createElement("div");
          layer.className = "marks";
          u.over.appendChild(layer);
          runs.forEach(function (run) {
            spec.marks.forEach(function (mark) {
              var y = yOf(run, mark);
              var at = xOf(run);
              if (y == null || at == null) return;
              var el = document.createElement(run.report_html ? "a" : "span");
              if (run.report_html) el.href = run.report_html;
              el.className = "mark v-" + run.verdict + " s-" + mark.style +
                (group ? " g-" + (Math.max(0, groups.indexOf(run[group.field])) % 4) : "");
              el.title = mark.label + " " + y.toFixed(2) + (spec.unit ? " " + spec.unit : "") + " \u2014 " + describe(run);
              el.dataset.x = String(at);
              el.dataset.y = String(y);
              el.dataset.dx = String(offset(run));
              el.dataset.label = run.label;
              layer.appendChild(el);
            });
          });
          lines.forEach(function (line) {
            var el = document.createElement("div");
            var off = line.x > xMax ? 1 : line.x < xMin ? -1 : 0;
            el.className = "vline vline-" + line.kind + (off ? " vline-off" : "");
            el.dataset.x = String(off > 0 ? xMax : off < 0 ? xMin : line.x);
            var flag = document.createElement("span");
            flag.className = "flag";
            flag.textContent = line.label + (off ? " " + line.x.toFixed(0) + " " + x.unit + (off > 0 ? " \u2192" : " \u2190") : "");
            el.title = line.label + ": " + line.x.toFixed(2) + " " + x.unit;
            el.appendChild(flag);
            layer.appendChild(el);
          });
        },
        draw: function (u) {
          Array.prototype.forEach.call(layer.children, function (el) {
            var left = u.valToPos(Number(el.dataset.x), "x") + Number(el.dataset.dx || 0);
            el.style.left = left + "px";
            if (el.dataset.y != null) el.style.top = u.valToPos(Number(el.dataset.y), "y") + "px";
          });
        },
      },
    };
  }

  function figure(spec) {
    var fig = document.createElement("figure");
    fig.className = "chart";
    fig.id = spec.id;
    var caption = document.createElement("figcaption");
    var title = document.createElement("span");
    title.className = "title";
    title.textContent = spec.title;
    caption.appendChild(title);
    var source = document.createElement("span");
    source.className = "source";
    source.textContent = "source: " + spec.source;
    caption.appendChild(source);
    fig.appendChild(caption);
    root.appendChild(fig);
    return fig;
  }

  function chart(spec) {
    var fig = figure(spec);
    var ys = [];
    runs.forEach(function (run) {
      spec.marks.forEach(function (mark) {
        var y = yOf(run, mark);
        if (y != null) ys.push(y);
      });
    });
    if (!ys.length) {
      var p = document.createElement("p");
      p.className = "no-data";
      p.textContent = "no run measured this";
      fig.appendChild(p);
      return;
    }
    var yMax = Math.max.apply(null, ys.concat(spec.diagonal ? [xMax] : []));
    yMax = yMax > 0 ? yMax * 1.12 : 1;
    // The only uPlot series is the diagonal peak = limit (hidden on other charts): the marks are DOM.
    var data = [[xMin, xMax], spec.diagonal ? [xMin, xMax] : [null, null]];
    var opts = {
      width: Math.max(root.clientWidth - 8, 320),
      height: 220,
      legend: {show: false},
      cursor: {show: false},
      scales: {x: {time: false, range: [xMin, xMax]}, y: {range: [0, yMax]}},
      axes: [{label: x.label}, {label: spec.unit, size: 60}],
      series: [
        {label: x.label},
        {label: "peak = limit", stroke: "#b3261e", width: 1, dash: [6, 4], points: {show: false}, show: !!spec.diagonal},
      ],
      plugins: [marksPlugin(spec)],
    };
    charts.push(new uPlot(opts, data, fig));
  }

  doc.charts.forEach(chart);
  window.addEventListener("resize", function () {
    var width = Math.max(root.clientWidth - 8, 320);
    charts.forEach(function (u) { u.setSize({width: width, height: 220}); });
  });
  window.stackprobeCharts = charts;
  document.body.dataset.chartsReady = String(charts.length);
})();
