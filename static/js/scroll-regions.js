/* Wide tables scroll sideways inside their `.table-responsive` box. A keyboard user can scroll
   such a box only when it takes the focus (WCAG 2.1.1), so every box that actually scrolls at the
   current width gets tabindex="0", role="group" and the name of its table (caption, aria-label,
   or the heading of the section around it); a box that stops scrolling gives them back.
   role="group" rather than "region": the section around the table is often a region landmark of
   the same name already. Loaded on every page by base.html. */
(function () {
  "use strict";

  function labelledBy(box) {
    var table = box.querySelector("table");
    if (table && table.caption && table.caption.textContent.trim()) {
      if (!table.caption.id) { table.caption.id = "caption-" + Math.random().toString(36).slice(2, 10); }
      return { labelledby: table.caption.id };
    }
    if (table && table.getAttribute("aria-label")) { return { label: table.getAttribute("aria-label") }; }
    var section = box.closest("[aria-labelledby]");
    if (section) { return { labelledby: section.getAttribute("aria-labelledby") }; }
    return null;
  }

  function update() {
    document.querySelectorAll(".table-responsive").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      var ours = box.dataset.scrollRegion === "1";
      if (scrolls && !ours && !box.hasAttribute("tabindex")) {
        var name = labelledBy(box);
        box.setAttribute("tabindex", "0");
        box.dataset.scrollRegion = "1";
        if (name) {
          box.setAttribute("role", "group");
          if (name.labelledby) { box.setAttribute("aria-labelledby", name.labelledby); }
          else { box.setAttribute("aria-label", name.label); }
        }
      } else if (!scrolls && ours) {
        ["tabindex", "role", "aria-labelledby", "aria-label", "data-scroll-region"].forEach(function (a) {
          box.removeAttribute(a);
        });
      }
    });
  }

  var pending = null;
  function later() {
    if (pending) { window.cancelAnimationFrame(pending); }
    pending = window.requestAnimationFrame(function () { pending = null; update(); });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", update); } else { update(); }
  window.addEventListener("load", update);
  window.addEventListener("resize", later);
  document.addEventListener("shown.bs.collapse", later);
  document.addEventListener("toggle", later, true);  // <details> opening shows tables inside it
})();
