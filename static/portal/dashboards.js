/* Control-panel dashboards: draws every <canvas data-chart="ID"> with Chart.js from the
 * numbers in <script id="ID" type="application/json"> (Django's json_script). The same
 * numbers are in a table beside each chart. No animation: the page shows the final
 * picture at once (and screenshots show what the database holds).
 * A page whose content has data-dashboard-url follows what is running: every
 * data-dashboard-period ms it fetches that JSON ({parts: {id: html}, charts: {id: data},
 * chart_parts: {id: html}, finished}), replaces each part by id and redraws each chart in
 * place; a chart the page has no canvas for yet (a wave's first sample came after the page
 * opened) is put in the page's [data-chart-parts] box from chart_parts, in data-order, and
 * drawn. No reload. It stops once the answer says finished (a finished rollout). */
(function () {
  "use strict";

  // Meaning carries colour: planned grey, offered blue, downloaded teal, running green,
  // failed red; versions and states take the palette in order.
  var ROLES = {
    planned: "#8a8f98",
    offered: "#2b5f8a",
    downloaded: "#3a9ca6",
    running: "#2e8540",
    failed: "#c0392b",
    none: "#c9ced6"
  };
  // No red among them: red means failed.
  var PALETTE = [
    "#2b5f8a", "#e08a1e", "#2e8540", "#8e44ad", "#3a9ca6", "#b5a22c",
    "#d35d9b", "#5b6770", "#7fb0dc", "#f0b775", "#8fcf9a", "#b39ddb"
  ];
  var STATES = {
    "up to date": "#2e8540",
    "update offered": "#2b5f8a",
    "awaiting copy": "#e08a1e",
    "deferred": "#b5a22c",
    "held": "#8e44ad",
    "no rule": "#8a8f98"
  };

  function colour(dataset, index) {
    return ROLES[dataset.role] || PALETTE[index % PALETTE.length];
  }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function config(data) {
    var kind = data.kind;
    var datasets = data.datasets.map(function (dataset, index) {
      var copy = Object.assign({}, dataset);
      delete copy.role;
      if (kind === "doughnut") {
        copy.backgroundColor = data.labels.map(function (label, i) {
          return STATES[label] || PALETTE[i % PALETTE.length];
        });
      } else {
        copy.backgroundColor = colour(dataset, index);
        copy.borderColor = colour(dataset, index);
      }
      if (kind === "line") {
        copy.fill = false;
        copy.tension = 0;
        copy.pointRadius = data.labels.length > 60 ? 0 : 2;
        if (dataset.role === "planned") {
          copy.borderDash = [6, 4];
        }
      }
      return copy;
    });
    var options = {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: {
        legend: { position: kind === "doughnut" ? "right" : "top" },
        title: { display: false }
      }
    };
    if (kind !== "doughnut") {
      var stacked = kind === "stacked-bar";
      options.scales = {
        x: { stacked: stacked, ticks: { autoSkip: true, maxRotation: 0 } },
        y: { stacked: stacked, beginAtZero: true, ticks: { precision: 0 } }
      };
      options.interaction = { mode: "index", intersect: false };
    }
    return {
      type: kind === "stacked-bar" ? "bar" : kind,
      data: { labels: data.labels, datasets: datasets },
      options: options
    };
  }

  function draw() {
    if (typeof Chart === "undefined") {
      return;
    }
    Chart.defaults.color = cssVar("--body-quiet-color", "#666");
    Chart.defaults.borderColor = cssVar("--hairline-color", "#e8e8e8");
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.chart);
      if (!source || Chart.getChart(canvas)) {
        return;
      }
      new Chart(canvas, config(JSON.parse(source.textContent)));
    });
    document.body.dataset.chartsDrawn = "true";
  }

  // Puts a chart's markup (its canvas and json_script) in the box, before the first part
  // of a higher data-order; the box's "nothing yet" line goes. True if it was put.
  function place(html) {
    var box = document.querySelector("[data-chart-parts]");
    if (!box || !html) {
      return false;
    }
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var part = template.content.firstElementChild;
    if (!part || (part.id && document.getElementById(part.id))) {
      return false;
    }
    var order = parseInt(part.dataset.order, 10);
    var next = Array.prototype.find.call(box.querySelectorAll("[data-order]"), function (el) {
      return parseInt(el.dataset.order, 10) > order;
    });
    box.insertBefore(part, next || null);
    box.querySelectorAll("[data-chart-none]").forEach(function (none) { none.remove(); });
    return true;
  }

  function refresh(answer) {
    Object.keys(answer.parts || {}).forEach(function (id) {
      var element = document.getElementById(id);
      if (element && element.outerHTML !== answer.parts[id]) {
        element.outerHTML = answer.parts[id];
      }
    });
    var placed = false;
    Object.keys(answer.charts || {}).forEach(function (id) {
      if (!document.querySelector('canvas[data-chart="' + id + '"]')) {
        placed = place((answer.chart_parts || {})[id]) || placed;
      }
    });
    if (typeof Chart === "undefined") {
      return;
    }
    Object.keys(answer.charts || {}).forEach(function (id) {
      var canvas = document.querySelector('canvas[data-chart="' + id + '"]');
      var chart = canvas && Chart.getChart(canvas);
      if (chart) {
        chart.data = config(answer.charts[id]).data;
        chart.update();
      }
    });
    if (placed) {
      draw();  // the new canvases, from their json_script: the others keep their charts
    }
  }

  function follow(box) {
    var url = box.dataset.dashboardUrl;
    var period = parseInt(box.dataset.dashboardPeriod, 10) || 5000;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        })
        .then(function (answer) {
          refresh(answer);
          if (answer.finished) {
            box.dataset.dashboardFinished = "true";
          } else {
            window.setTimeout(poll, period);
          }
        })
        .catch(function () { window.setTimeout(poll, period * 5); });
    }
    if (box.dataset.dashboardFinished !== "true") {
      window.setTimeout(poll, period);
    }
  }

  function start() {
    draw();
    document.querySelectorAll("[data-dashboard-url]").forEach(follow);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
