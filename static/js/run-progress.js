/* Polls a recompute run's status JSON and updates the progress page until the run ends. */
(function () {
  "use strict";
  var POLL_MS = 1000;
  function text(root, sel, value) { var n = root.querySelector(sel); if (n) { n.textContent = value; } }
  function rows(tbody, obj, digits) {
    if (!tbody) { return; }
    var keys = Object.keys(obj || {});
    if (!keys.length) { return; }
    tbody.replaceChildren.apply(tbody, keys.map(function (k) {
      var tr = document.createElement("tr");
      var th = document.createElement("th"); th.scope = "row"; th.className = "fw-normal"; th.textContent = k;
      var td = document.createElement("td"); td.className = "text-end";
      td.textContent = typeof obj[k] === "number" ? (digits ? obj[k].toFixed(digits) : obj[k].toLocaleString()) : String(obj[k]);
      tr.appendChild(th); tr.appendChild(td); return tr;
    }));
  }
  function fmt(iso) { return iso ? new Date(iso).toLocaleString(document.documentElement.lang || undefined) : "—"; }
  function init() {
    var root = document.querySelector(".run-progress");
    if (!root) { return; }
    var url = root.dataset.statusUrl;
    var badge = { succeeded: "text-bg-success", running: "text-bg-info", failed: "text-bg-danger" };
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          var status = root.querySelector("[data-run-status]");
          status.textContent = s.status_label;
          status.className = "badge " + (badge[s.status] || "text-bg-light");
          text(root, "[data-run-stage]", s.stage_label);
          var bar = root.querySelector("[data-run-bar]");
          bar.setAttribute("aria-valuenow", s.progress);
          var inner = bar.querySelector(".progress-bar");
          inner.style.width = s.progress + "%";
          inner.textContent = s.progress + "%";
          inner.classList.toggle("progress-bar-animated", !s.finished);
          inner.classList.toggle("progress-bar-striped", !s.finished);
          inner.classList.toggle("bg-danger", s.status === "failed");
          var err = root.querySelector("[data-run-error]");
          err.textContent = s.error || "";
          err.classList.toggle("d-none", !s.error);
          text(root, "[data-run-started]", fmt(s.started_at));
          text(root, "[data-run-finished]", fmt(s.finished_at));
          text(root, "[data-run-duration]", s.duration === null ? "—" : s.duration.toFixed(2) + " s");
          text(root, "[data-run-customers]", Number(s.customers).toLocaleString());
          text(root, "[data-run-changes]", Number(s.changes).toLocaleString());
          rows(document.querySelector("[data-run-timings]"), s.timings, 3);
          rows(document.querySelector("[data-run-by-dimension]"), s.changes_by_dimension, 0);
          if (!s.finished) { setTimeout(tick, POLL_MS); }
        })
        .catch(function () { setTimeout(tick, POLL_MS * 5); });
    }
    tick();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
