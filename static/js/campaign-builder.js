/* Campaign builder: live audience estimate (POST campaigns:estimate), trigger fields shown for
   the chosen trigger, and the preview pane (POST campaigns:preview with the editor's unsaved
   content; template errors are listed with their line). */
(function () {
  "use strict";
  function init() {
    var form = document.getElementById("campaign-form");
    if (!form) { return; }
    var labels = JSON.parse((document.getElementById("builder-labels") || {}).textContent || "{}");
    var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    var fmt = new Intl.NumberFormat(document.documentElement.lang || undefined);

    function post(url, body) {
      return fetch(url, { method: "POST", credentials: "same-origin",
                          headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
                          body: JSON.stringify(body) })
        .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); });
    }
    function val(name) { var el = form.elements[name]; return el ? el.value : ""; }

    // --- trigger parts
    var trigger = form.elements.trigger;
    function showTrigger() {
      form.querySelectorAll("[data-trigger-part]").forEach(function (el) {
        el.classList.toggle("d-none", el.dataset.triggerPart !== trigger.value);
      });
    }
    if (trigger) { trigger.addEventListener("change", showTrigger); showTrigger(); }

    // --- live estimate
    var box = document.getElementById("audience-estimate");
    var summary = box && box.querySelector("[data-estimate=summary]");
    var excluded = box && box.querySelector("[data-estimate=excluded]");
    var timer = null, seq = 0;
    function estimate() {
      var tiers = Array.prototype.map.call(form.elements.tiers.selectedOptions, function (o) { return o.value; });
      var body = { tiers: tiers, segment: val("segment"), kind: val("kind"), holdout_percent: val("holdout_percent") };
      if (!tiers.length && !body.segment) { summary.textContent = labels.choose; excluded.textContent = ""; return; }
      var mine = ++seq;
      box.setAttribute("aria-busy", "true");
      post(form.dataset.estimateUrl, body).then(function (res) {
        if (mine !== seq) { return; }
        box.removeAttribute("aria-busy");
        if (!res.ok) { summary.textContent = res.data.message || labels.failed; return; }
        var d = res.data;
        summary.textContent = fmt.format(d.audience) + " " + labels.audience + " · " + fmt.format(d.expected_sends) +
          " " + labels.sends + " · " + fmt.format(d.expected_holdout) + " " + labels.holdout;
        box.dataset.audience = d.audience;
        excluded.textContent = "";
        Object.keys(d.excluded || {}).forEach(function (k) {
          var li = document.createElement("li");
          li.className = "list-inline-item";
          li.textContent = (d.excluded_labels[k] || k) + ": " + fmt.format(d.excluded[k]);
          excluded.appendChild(li);
        });
      }).catch(function () { summary.textContent = labels.failed; });
    }
    function schedule() { clearTimeout(timer); timer = setTimeout(estimate, 250); }
    ["tiers", "segment", "kind", "holdout_percent"].forEach(function (name) {
      var el = form.elements[name];
      if (el) { el.addEventListener("change", schedule); el.addEventListener("input", schedule); }
    });
    if (box) { estimate(); }

    // --- preview
    var button = document.getElementById("preview-button");
    if (!button || !form.dataset.previewUrl) { return; }
    var customer = document.getElementById("preview-customer");
    var variant = document.getElementById("preview-variant");
    var errors = document.getElementById("preview-errors");
    var testCustomer = document.getElementById("test-send-customer");
    function preview() {
      errors.classList.add("d-none");
      document.getElementById("preview-subject").textContent = labels.rendering;
      post(form.dataset.previewUrl, { customer: customer.value, variant: variant ? variant.value : "",
                                      subject: val("subject"), html_body: val("html_body"), text_body: val("text_body") })
        .then(function (res) {
          var d = res.data;
          if (!res.ok) {
            errors.textContent = "";
            var head = document.createElement("div");
            head.textContent = d.message || "";
            errors.appendChild(head);
            Object.keys(d.errors || {}).forEach(function (field) {
              (Array.isArray(d.errors[field]) ? d.errors[field] : [d.errors[field]]).forEach(function (m) {
                var line = document.createElement("div");
                line.className = "template-error";
                var label = form.querySelector("label[for='id_" + field + "']");
                line.textContent = (label ? label.textContent.trim() : field) + ": " + m;
                errors.appendChild(line);
              });
            });
            errors.classList.remove("d-none");
            document.getElementById("preview-subject").textContent = "—";
            return;
          }
          document.getElementById("preview-subject").textContent = d.subject;
          document.getElementById("preview-html").srcdoc = d.html || "";
          document.getElementById("preview-text").textContent = d.text || "";
        });
    }
    button.addEventListener("click", preview);
    customer.addEventListener("change", function () { if (testCustomer) { testCustomer.value = customer.value; } });
    if (customer.value) { preview(); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
