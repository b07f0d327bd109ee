/* Campaign list: while a campaign on the page is sending, poll campaigns:progress every few
   seconds and update its progress bar and counts; reload when a status changes. */
(function () {
  "use strict";
  function init() {
    var table = document.getElementById("campaign-table");
    if (!table || table.dataset.live !== "1") { return; }
    var fmt = new Intl.NumberFormat(document.documentElement.lang || undefined);
    function poll() {
      fetch(table.dataset.progressUrl + "?ids=" + encodeURIComponent(table.dataset.ids), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          var changed = false, live = false;
          data.campaigns.forEach(function (c) {
            var row = table.querySelector("tr[data-campaign='" + c.id + "']");
            if (!row) { return; }
            if (row.dataset.status !== c.status) { changed = true; }
            if (c.status === "sending") { live = true; }
            var bar = row.querySelector("[data-field=bar]");
            if (bar) { bar.style.width = c.percent + "%"; bar.parentNode.setAttribute("aria-valuenow", c.percent); }
            var counts = row.querySelector("[data-field=counts]");
            if (counts && counts.dataset.template) {
              counts.textContent = counts.dataset.template.replace("__S__", fmt.format(c.sent)).replace("__T__", fmt.format(c.total));
            }
          });
          if (changed) { window.location.reload(); return; }
          if (live) { setTimeout(poll, 3000); }
        })
        .catch(function () { setTimeout(poll, 10000); });
    }
    setTimeout(poll, 3000);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
