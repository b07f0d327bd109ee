/* Operations dashboard: tier migration Sankey charts (vendored Apache ECharts) from the page's
   json_script "tier-migrations"; a click on a flow opens the customers behind it. Also turns on
   Bootstrap tooltips for the KPI definitions. Tier trends are drawn by tier-trends.js. */
(function () {
  "use strict";
  function sankeys() {
    var node = document.getElementById("tier-migrations");
    if (!node || !window.echarts) { return; }
    var data = JSON.parse(node.textContent || "{}");
    var lang = (document.documentElement.lang || "en").toLowerCase().indexOf("zh") === 0 ? "ZH" : "EN";
    document.querySelectorAll(".sankey-chart").forEach(function (el) {
      var d = data[el.dataset.dimension];
      if (!d || !d.links.length) { el.classList.add("d-none"); return; }
      var chart = window.echarts.init(el, null, { renderer: "svg", locale: lang });
      chart.setOption({
        animation: false,
        tooltip: { trigger: "item" },
        series: [{
          type: "sankey", left: 8, right: 90, top: 8, bottom: 8, nodeGap: 10, draggable: false,
          emphasis: { focus: "adjacency" }, lineStyle: { color: "gradient", opacity: 0.45 },
          label: { fontSize: 11 }, data: d.nodes, links: d.links
        }]
      });
      chart.on("click", function (params) {
        if (params.dataType === "edge" && params.data && params.data.url) { window.location.href = params.data.url; }
      });
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  function tooltips() {
    if (!window.bootstrap || !window.bootstrap.Tooltip) { return; }
    document.querySelectorAll('[data-bs-toggle="tooltip"]').forEach(function (el) {
      window.bootstrap.Tooltip.getOrCreateInstance(el);
    });
  }
  function init() { sankeys(); tooltips(); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
