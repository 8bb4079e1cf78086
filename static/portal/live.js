/* Pages that follow what is running: an element with data-live-url is refreshed from
   that small JSON endpoint every few seconds until the work is finished; no reload.
   The endpoint answers {label, tone, progress, reason, finished} and, optionally,
   progress_text (else the progress is shown as a percentage). */
(function () {
  "use strict";
  var PERIOD_MS = 2000;

  function set(box, field, text) {
    var element = box.querySelector('[data-live-field="' + field + '"]');
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
    return element;
  }

  function follow(box) {
    var url = box.getAttribute("data-live-url");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        })
        .then(function (state) {
          var label = set(box, "label", state.label);
          if (label && state.tone) { label.className = "state state-" + state.tone; }
          set(box, "progress-text", state.progress_text !== undefined
            ? state.progress_text : (state.finished ? "" : state.progress + "%"));
          set(box, "reason", state.reason || "-");
          box.setAttribute("data-live-finished", state.finished ? "true" : "false");
          if (state.finished) {
            set(box, "note", "Finished: reload the page for the full report.");
          } else {
            window.setTimeout(poll, PERIOD_MS);
          }
        })
        .catch(function () {
          set(box, "note", "Lost contact with the server; retrying.");
          window.setTimeout(poll, PERIOD_MS * 5);
        });
    }
    if (box.getAttribute("data-live-finished") !== "true") {
      window.setTimeout(poll, PERIOD_MS);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-live-url]"), follow);
  });
})();
