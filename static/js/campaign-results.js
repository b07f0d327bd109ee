/* Campaign results charts with the vendored Apache ECharts: conversion of treated vs holdout
   (bars) with the uplift and its 95% CI (error bars), overall and per tier; messages by
   outcome. While the campaign is sending, the page polls its JSON and updates the figures and
   charts, and reloads once sending is over. Also draws the tier-strategy chart. */
(function () {
  "use strict";
  function parse(id) { var n = document.getElementById(id); return n ? JSON.parse(n.textContent || "null") : null; }
  function lang() { return (document.documentElement.lang || "en").toLowerCase().indexOf("zh") === 0 ? "ZH" : "EN"; }
  function pct(v) { return v === null || v === undefined ? null : Math.round(v * 10000) / 100; }
  var L = {};

  function uplift(groups) {
    // One row per group: treated rate, holdout rate, uplift with CI (percentage points).
    return {
      names: groups.map(function (g) { return g.name; }),
      treated: groups.map(function (g) { return pct(g.rate); }),
      holdout: groups.map(function (g) { return pct(g.holdout_rate); }),
      diff: groups.map(function (g) { return pct(g.uplift && g.uplift.difference); }),
      ci: groups.map(function (g, i) {
        var u = g.uplift || {};
        return u.ci_low === null || u.ci_low === undefined ? [i, null, null] : [i, pct(u.ci_low), pct(u.ci_high)];
      })
    };
  }
  function conversionOption(groups) {
    var d = uplift(groups);
    return {
      animation: false,
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null ? "–" : v + " %"; } },
      legend: { bottom: 0 },
      grid: { left: 8, right: 8, top: 16, bottom: 40, containLabel: true },
      xAxis: { type: "category", data: d.names },
      yAxis: { type: "value", axisLabel: { formatter: "{value} %" } },
      series: [
        { name: L.treated, type: "bar", data: d.treated },
        { name: L.holdout, type: "bar", data: d.holdout },
        { name: L.uplift, type: "scatter", data: d.diff, symbolSize: 9, z: 5 },
        { name: L.uplift + " 95% CI", type: "custom", z: 4, data: d.ci,
          renderItem: function (params, api) {
            if (api.value(1) === null || isNaN(api.value(1))) { return null; }
            var lo = api.coord([api.value(0), api.value(1)]), hi = api.coord([api.value(0), api.value(2)]);
            var w = 8, style = { stroke: "#333", lineWidth: 1.5 };
            return { type: "group", children: [
              { type: "line", shape: { x1: lo[0], y1: lo[1], x2: hi[0], y2: hi[1] }, style: style },
              { type: "line", shape: { x1: lo[0] - w, y1: lo[1], x2: lo[0] + w, y2: lo[1] }, style: style },
              { type: "line", shape: { x1: hi[0] - w, y1: hi[1], x2: hi[0] + w, y2: hi[1] }, style: style }
            ] };
          } }
      ]
    };
  }
  function groupsOf(results) {
    var rows = [{ name: L.overall, block: results.overall }];
    (results.tiers || []).forEach(function (t) { rows.push({ name: t.name, block: t }); });
    (results.variants || []).forEach(function (v) { rows.push({ name: v.name, block: v }); });
    return rows.map(function (r) {
      return { name: r.name, rate: r.block.conversion_rate, holdout_rate: r.block.holdout_conversion_rate,
               uplift: r.block.uplift };
    });
  }
  function deliveryOption(o) {
    var parts = ["sent", "failed", "skipped", "queued", "cancelled"].filter(function (k) { return o[k]; });
    parts.push("holdout");
    return {
      animation: false,
      tooltip: { trigger: "item" },
      legend: { bottom: 0 },
      series: [{ type: "pie", radius: ["35%", "65%"], label: { formatter: "{b}: {c}" },
                 data: parts.map(function (k) { return { name: L[k] || k, value: o[k] || 0 }; }) }]
    };
  }

  function init() {
    L = parse("results-labels") || {};
    var results = parse("results-data");
    if (results && window.echarts) {
      var conv = window.echarts.init(document.getElementById("chart-conversion"), null, { renderer: "svg", locale: lang() });
      var deliv = window.echarts.init(document.getElementById("chart-delivery"), null, { renderer: "svg", locale: lang() });
      var draw = function (r) { conv.setOption(conversionOption(groupsOf(r)), true); deliv.setOption(deliveryOption(r.overall), true); };
      draw(results);
      window.addEventListener("resize", function () { conv.resize(); deliv.resize(); });
      var box = document.getElementById("results-figures");
      if (box && box.dataset.live === "1") {
        var fmt = new Intl.NumberFormat(document.documentElement.lang || undefined);
        var poll = function () {
          fetch(box.dataset.url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (r) {
            ["audience", "sent", "holdout", "queued", "conversions"].forEach(function (k) {
              var el = box.querySelector("[data-figure=" + k + "]");
              if (el) { el.textContent = fmt.format(r.overall[k]); }
            });
            draw(r);
            if (!r.live) { window.location.reload(); return; }
            setTimeout(poll, 3000);
          }).catch(function () { setTimeout(poll, 10000); });
        };
        setTimeout(poll, 3000);
      }
    }
    var strategies = parse("strategy-data");
    var el = document.getElementById("strategy-chart");
    if (strategies && el && window.echarts) {
      L = { treated: el.dataset.treated, holdout: el.dataset.holdout, uplift: el.dataset.uplift };
      var chart = window.echarts.init(el, null, { renderer: "svg", locale: lang() });
      chart.setOption(conversionOption(strategies.map(function (s) {
        return { name: s.title, rate: s.rate, holdout_rate: s.holdout_rate, uplift: s.uplift };
      })));
      window.addEventListener("resize", function () { chart.resize(); });
    }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
