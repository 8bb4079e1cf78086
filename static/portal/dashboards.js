/* Control-panel dashboards: draws every <canvas data-chart="ID"> with Chart.js from the
 * numbers in <script id="ID" type="application/json"> (Django's json_script). The same
 * numbers are in a table beside each chart. No animation: the page shows the final
 * picture at once (and screenshots show what the database holds). */
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

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
