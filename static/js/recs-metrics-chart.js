/* Offline metrics of the trained recommenders (ECharts bar chart on the models page). */
(function () {
  "use strict";
  function init() {
    var node = document.getElementById("recs-metrics-chart");
    var data = document.getElementById("recs-metrics-data");
    if (!node || !data || !window.echarts) { return; }
    var d = JSON.parse(data.textContent);
    var baseline = (document.getElementById("recs-baseline-label") || {}).textContent || "baseline";
    var chart = window.echarts.init(node);
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 16, top: 32, bottom: 40 },
      xAxis: { type: "category", data: d.labels },
      yAxis: { type: "value", min: 0 },
      series: [
        { name: "nDCG@10", type: "bar", data: d.ndcg },
        { name: "P@10", type: "bar", data: d.precision },
        { name: baseline, type: "line", data: d.baseline_ndcg, symbol: "circle" }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
