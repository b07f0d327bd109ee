/* Polls a training's status JSON (TrainedModel row) and updates the model page until it ends. */
(function () {
  "use strict";
  var POLL_MS = 1000;
  function init() {
    var root = document.querySelector(".train-progress");
    if (!root || root.dataset.finished === "true") { return; }
    var badge = { succeeded: "text-bg-success", running: "text-bg-info", queued: "text-bg-secondary", failed: "text-bg-danger", skipped: "text-bg-warning" };
    function tick() {
      fetch(root.dataset.statusUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          var status = root.querySelector("[data-train-status]");
          status.textContent = s.status_label;
          status.className = "badge " + (badge[s.status] || "text-bg-light");
          root.querySelector("[data-train-stage]").textContent = s.stage || "";
          var inner = root.querySelector(".progress-bar");
          inner.style.width = s.progress + "%";
          inner.textContent = s.progress + "%";
          root.querySelector("[data-train-bar]").setAttribute("aria-valuenow", s.progress);
          var err = root.querySelector("[data-train-error]");
          err.textContent = s.error || "";
          err.classList.toggle("d-none", !s.error);
          if (s.finished) { window.location.reload(); } else { setTimeout(tick, POLL_MS); }
        })
        .catch(function () { setTimeout(tick, POLL_MS * 5); });
    }
    tick();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
