// The console's charts: every <div class="chart" data-src="/api/charts/BOARD/N"> becomes a uPlot
// time series over the window chosen in the page's selector, refreshed in place. Units on the
// y axis and in the legend; alert thresholds as dashed red lines. After each draw the element
// carries data-points (samples drawn) and data-series, which the browser tests read.
(function () {
  "use strict";
  var COLORS = ["#2f6fde", "#d9480f", "#2b8a3e", "#ae3ec9", "#e8590c", "#1098ad",
                "#c2255c", "#5c940d", "#364fc7", "#862e9c", "#a61e4d", "#0b7285"];
  var params = new URLSearchParams(location.search);
  var windowSeconds = parseInt(params.get("window") || "3600", 10);
  var refreshSeconds = parseInt(params.get("refresh") || "15", 10);
  var plots = {};

  function scaled(value, steps, units) {
    var i = 0;
    while (Math.abs(value) >= steps[i] && i < steps.length - 1) { value /= steps[i]; i++; }
    return value.toLocaleString(undefined, {maximumFractionDigits: Math.abs(value) < 10 ? 2 : 0}) + " " + units[i];
  }

  // One value with its unit, scaled to read well: 0.0123 s -> 12.3 ms, 1536 bytes -> 1.5 KiB.
  function format(value, unit) {
    if (value == null || isNaN(value)) return "–";
    if (unit === "s") {
      if (value !== 0 && Math.abs(value) < 1) return (value * 1000).toLocaleString(undefined, {maximumFractionDigits: Math.abs(value) < 0.01 ? 2 : 1}) + " ms";
      if (Math.abs(value) >= 120) return (value / 60).toLocaleString(undefined, {maximumFractionDigits: 1}) + " min";
      return value.toLocaleString(undefined, {maximumFractionDigits: 2}) + " s";
    }
    if (unit === "bytes" || unit === "bytes/s") {
      var suffix = unit === "bytes/s" ? "/s" : "";
      return scaled(value, [1024, 1024, 1024, 1024], ["B", "KiB", "MiB", "GiB", "TiB"].map(function (u) { return u + suffix; }));
    }
    if (unit === "%") return (value * 100).toLocaleString(undefined, {maximumFractionDigits: 2}) + " %";
    var text = Math.abs(value) >= 1e6 ? (value / 1e6).toLocaleString(undefined, {maximumFractionDigits: 1}) + "M"
      : value.toLocaleString(undefined, {maximumFractionDigits: Math.abs(value) < 10 ? 3 : 0});
    return unit ? text + " " + unit : text;
  }

  function scaledUnit(unit) {
    return ["s", "ms", "bytes", "bytes/s", "%"].indexOf(unit) >= 0;
  }

  function compact(v) {
    var a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toLocaleString(undefined, {maximumFractionDigits: 1}) + "M";
    if (a >= 1e4) return (v / 1e3).toLocaleString(undefined, {maximumFractionDigits: 1}) + "k";
    return v.toLocaleString(undefined, {maximumFractionDigits: a < 10 ? 2 : 0});
  }

  function thresholdPlugin(thresholds, unit) {
    return {hooks: {draw: function (u) {
      var ctx = u.ctx;
      thresholds.forEach(function (t) {
        var y = u.valToPos(t.value, "y", true);
        if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) return;
        ctx.save();
        ctx.strokeStyle = "#c92a2a"; ctx.lineWidth = 1.5 * devicePixelRatio;
        ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
        ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
        ctx.fillStyle = "#c92a2a"; ctx.textAlign = "left"; ctx.textBaseline = "bottom"; ctx.font = (11 * devicePixelRatio) + "px system-ui";
        ctx.fillText(t.alert + " " + t.op + " " + format(t.value, unit), u.bbox.left + 4, y - 4);
        ctx.restore();
      });
    }}};
  }

  function draw(el, data) {
    var unit = data.unit || "";
    var note = el.querySelector(".chart-note");
    note.textContent = data.error || (data.series.length ? (data.hidden ? data.hidden + " more series not shown" : "")
      : "no data in this window");
    note.className = "chart-note " + (data.error ? "bad" : "muted");
    var points = 0;
    data.series.forEach(function (s) { s.values.forEach(function (v) { if (v != null) points++; }); });
    el.dataset.points = String(points);
    el.dataset.series = String(data.series.length);
    var thresholds = data.thresholds || [];
    var rows = [data.x].concat(data.series.map(function (s) { return s.values; }));
    var key = el.dataset.src + "|" + data.series.map(function (s) { return s.label; }).join("|");
    if (plots[el.dataset.src] && plots[el.dataset.src].key === key) {
      plots[el.dataset.src].plot.setData(rows);
      return;
    }
    if (plots[el.dataset.src]) plots[el.dataset.src].plot.destroy();
    var holder = el.querySelector(".chart-plot");
    var opts = {
      width: holder.clientWidth || 520, height: 220,
      plugins: thresholds.length ? [thresholdPlugin(thresholds, unit)] : [],
      scales: {y: {range: function (u, min, max) {
        // a threshold stays in view, and a flat zero line gets some height
        thresholds.forEach(function (t) { max = Math.max(max == null ? t.value : max, t.value * 1.1); });
        min = Math.min(min == null ? 0 : min, 0);
        if (max == null || max <= min) max = min + 1;
        return [min, max];
      }}},
      axes: [{}, scaledUnit(unit)
        ? {size: 80, values: function (u, splits) { return splits.map(function (v) { return format(v, unit); }); }}
        // a count: compact ticks, the unit as the axis' label
        : {size: 60, label: unit, labelSize: 20, values: function (u, splits) { return splits.map(compact); }}],
      series: [{value: function (u, v) { return v == null ? "–" : new Date(v * 1000).toLocaleTimeString(); }}].concat(
        data.series.map(function (s, i) {
          return {label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
                  value: function (u, v) { return format(v, unit); }};
        })),
      legend: {live: true},
    };
    plots[el.dataset.src] = {key: key, plot: new uPlot(opts, rows, holder)};
  }

  function load(el) {
    var url = el.dataset.src + "?window=" + windowSeconds;
    return fetch(url, {headers: {Accept: "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (data) { draw(el, data); })
      .catch(function (err) {
        var note = el.querySelector(".chart-note");
        note.textContent = "could not load: " + err; note.className = "chart-note bad";
        el.dataset.points = "0";
      });
  }

  function loadAll() {
    var charts = document.querySelectorAll(".chart[data-src]");
    return Promise.all(Array.prototype.map.call(charts, load)).then(function () {
      document.body.dataset.charts = "drawn";
    });
  }

  function controls() {
    var win = document.getElementById("chart-window");
    var every = document.getElementById("chart-refresh");
    if (win) { win.value = String(windowSeconds); win.onchange = function () { params.set("window", win.value); location.search = params.toString(); }; }
    if (every) { every.value = String(refreshSeconds); every.onchange = function () { params.set("refresh", every.value); location.search = params.toString(); }; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    controls();
    loadAll();
    if (refreshSeconds > 0) {
      // the health page's tables are rendered by the server: it reloads whole; charts elsewhere in place
      var whole = document.body.dataset.reload === "page";
      setInterval(function () { if (whole) location.reload(); else loadAll(); }, refreshSeconds * 1000);
    }
  });
})();
