/* Tier sizes over time (TierSnapshot), one stacked area chart per dimension, with the vendored
   Apache ECharts. Data comes from the page (json_script "tier-trends"). */
(function () {
  "use strict";
  function init() {
    var node = document.getElementById("tier-trends");
    if (!node || !window.echarts) { return; }
    var trends = JSON.parse(node.textContent || "{}");
    var lang = (document.documentElement.lang || "en").toLowerCase().indexOf("zh") === 0 ? "ZH" : "EN";
    document.querySelectorAll(".trend-chart").forEach(function (el) {
      var data = trends[el.dataset.dimension];
      if (!data || data.dates.length < 2) {
        el.classList.add("d-none");
        var empty = el.parentNode.querySelector(".trend-empty");
        if (empty) { empty.classList.remove("d-none"); }
        return;
      }
      var chart = window.echarts.init(el, null, { renderer: "svg", locale: lang });
      chart.setOption({
        animation: false,
        color: data.series.map(function (s) { return s.colour; }),
        tooltip: { trigger: "axis" },
        legend: { type: "scroll", bottom: 0, textStyle: { fontSize: 11 } },
        grid: { left: 8, right: 28, top: 8, bottom: 32, containLabel: true },
        xAxis: { type: "category", boundaryGap: false, data: data.dates, axisLabel: { hideOverlap: true } },
        yAxis: { type: "value", minInterval: 1 },
        series: data.series.map(function (s) {
          return { name: s.name, type: "line", stack: "total", areaStyle: { opacity: 0.75 }, symbol: "none",
                   lineStyle: { width: 1 }, emphasis: { focus: "series" }, data: s.data };
        })
      });
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
