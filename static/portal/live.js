/* Pages that follow what is running: an element with data-live-url is refreshed from
   that small JSON endpoint every few seconds until the work is finished; no reload.
   The endpoint answers {label, tone, progress, reason, finished} and, optionally,
   progress_text (else the progress is shown as a percentage). When the work finishes and
   the box has data-live-replace="SELECTOR", the page fetches itself once and puts the
   new SELECTOR element in place of the old (the full report: nothing on the page still
   says "queued"); without it, or if that fetch fails, the box asks for a reload. */
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

  function replace(box) {
    var selector = box.getAttribute("data-live-replace");
    var note = "Finished: reload the page for the full report.";
    if (!selector) {
      set(box, "note", note);
      return;
    }
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector(selector);
        var stale = document.querySelector(selector);
        if (!fresh || !stale) { throw new Error("no " + selector); }
        stale.replaceWith(document.importNode(fresh, true));
      })
      .catch(function () { set(box, "note", note); });
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
            replace(box);
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
