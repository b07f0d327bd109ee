/* Stratum rule builder: plain JavaScript, no framework.
 *
 * Progressive: the form's real field is the JSON <textarea>; without JavaScript staff edit the
 * JSON and the server validates it. With JavaScript this script draws the rule as nested
 * all/any groups and conditions (field picker, operator list by field type, value input by
 * type), keeps the textarea in step both ways, and asks the server for a live count and sample
 * (debounced), showing validation errors next to the conditions they name (paths such as
 * "all[1].any[0]", as segmentation/rules.py reports them).
 *
 * Configuration comes from the page: json_script "rule-builder-config" (fields, operators,
 * labels) and the .rule-editor element's data-preview-url / data-tier / data-readonly.
 */
(function () {
  "use strict";

  var DEBOUNCE_MS = 400;
  var NUMBER_TYPES = { integer: 1, days: 1, decimal: 1, number: 1 };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) { return; }
      if (key === "text") { node.textContent = value; } else if (key === "className") { node.className = value; } else { node.setAttribute(key, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  var uid = 0;
  function nextId(prefix) { uid += 1; return prefix + "-" + uid; }

  function RuleEditor(root, cfg) {
    this.root = root;
    this.cfg = cfg;
    this.text = cfg.text;
    this.readonly = root.dataset.readonly === "1";
    this.previewUrl = root.dataset.previewUrl;
    this.tier = root.dataset.tier || null;
    this.textarea = root.querySelector("textarea");
    this.builderEl = root.querySelector(".rule-builder");
    this.jsonError = root.querySelector(".rule-json-error");
    this.fields = {};
    var self = this;
    cfg.fields.forEach(function (f) { self.fields[f.field] = f; });
    this.timer = null;
    this.seq = 0;
    this.model = null;
    this.loadFromTextarea(true);
    if (!this.readonly) {
      this.textarea.addEventListener("input", function () { self.loadFromTextarea(false); });
    }
    this.builderEl.hidden = false;
    this.schedulePreview(0);
  }

  // --- model <-> JSON --------------------------------------------------------------------
  RuleEditor.prototype.fieldOf = function (name) {
    if (typeof name === "string" && name.indexOf("attributes.") === 0) { return this.fields["attributes."]; }
    return this.fields[name];
  };

  RuleEditor.prototype.fromJSON = function (node, isRoot) {
    if (node && typeof node === "object" && !Array.isArray(node)) {
      var keys = Object.keys(node);
      if (isRoot && keys.length === 0) { return { type: "group", mode: "all", children: [] }; }
      if (keys.length === 1 && (keys[0] === "all" || keys[0] === "any") && Array.isArray(node[keys[0]])) {
        var self = this;
        return { type: "group", mode: keys[0], children: node[keys[0]].map(function (c) { return self.fromJSON(c, false); }) };
      }
      if ("field" in node || "op" in node) {
        var cond = { type: "cond", field: node.field, op: node.op, value: node.value, hasValue: "value" in node };
        if (isRoot) { return { type: "group", mode: "all", children: [cond] }; }
        return cond;
      }
    }
    throw new Error("unsupported");
  };

  RuleEditor.prototype.toJSON = function (node, isRoot) {
    var self = this;
    if (node.type === "group") {
      if (isRoot && node.children.length === 0) { return {}; }
      var out = {};
      out[node.mode] = node.children.map(function (c) { return self.toJSON(c, false); });
      return out;
    }
    var json = { field: node.field, op: node.op };
    if (node.hasValue !== false) { json.value = node.value; }
    return json;
  };

  RuleEditor.prototype.loadFromTextarea = function (initial) {
    var raw = this.textarea.value.trim();
    var parsed;
    try {
      parsed = raw === "" ? {} : JSON.parse(raw);
    } catch (exc) {
      this.showJsonError(this.text.json_error + " " + exc.message);
      return;
    }
    this.showJsonError("");
    try {
      this.model = this.fromJSON(parsed, true);
      this.render();
    } catch (exc) {
      this.model = null;
      this.builderEl.replaceChildren(el("p", { className: "small text-body-secondary mb-0", text: this.text.json_error + " " + JSON.stringify(parsed).slice(0, 80) }));
    }
    if (!initial) { this.schedulePreview(); }
  };

  RuleEditor.prototype.showJsonError = function (message) {
    this.jsonError.textContent = message;
    this.jsonError.hidden = !message;
    this.textarea.classList.toggle("is-invalid", !!message);
  };

  RuleEditor.prototype.changed = function (rerender) {
    this.textarea.value = JSON.stringify(this.toJSON(this.model, true), null, 2);
    this.showJsonError("");
    if (rerender) { this.render(); }
    this.schedulePreview();
  };

  // --- defaults -----------------------------------------------------------------------------
  RuleEditor.prototype.defaultOp = function (field) {
    var prefer = [">=", "=", "within_last"];
    for (var i = 0; i < prefer.length; i += 1) { if (field.ops.indexOf(prefer[i]) >= 0) { return prefer[i]; } }
    return field.ops[0];
  };

  RuleEditor.prototype.defaultScalar = function (field) {
    if (NUMBER_TYPES[field.type]) { return field.type === "days" ? 30 : 1; }
    if (field.type === "boolean") { return true; }
    if (field.type === "tier") { return (field.values || [""])[0]; }
    if (field.type === "datetime") { return new Date().toISOString().slice(0, 10); }
    return "";
  };

  RuleEditor.prototype.shapeValue = function (cond, field) {
    var op = cond.op;
    var first = Array.isArray(cond.value) ? cond.value[0] : cond.value;
    if (first === undefined || first === null || first === "") { first = this.defaultScalar(field); }
    cond.hasValue = true;
    if (op === "is_null") { cond.value = typeof cond.value === "boolean" ? cond.value : true; } else if (op === "between") {
      cond.value = Array.isArray(cond.value) && cond.value.length === 2 ? cond.value : [first, first];
    } else if (op === "in" || op === "not_in") {
      cond.value = Array.isArray(cond.value) ? cond.value : [first];
    } else if (op === "within_last" || op === "not_within_last") {
      cond.value = typeof first === "number" ? first : 30;
    } else { cond.value = first; }
  };

  RuleEditor.prototype.newCondition = function () {
    var field = this.cfg.fields.filter(function (f) { return f.group === "features"; })[0] || this.cfg.fields[0];
    var cond = { type: "cond", field: field.field, op: this.defaultOp(field), value: undefined };
    this.shapeValue(cond, field);
    return cond;
  };

  // --- value parsing -------------------------------------------------------------------------
  RuleEditor.prototype.parseScalar = function (field, raw) {
    var text = String(raw).trim();
    if (field.type === "integer" || field.type === "days") {
      return /^-?\d+$/.test(text) ? parseInt(text, 10) : text;
    }
    if (field.type === "decimal" || field.type === "number") {
      return text !== "" && !isNaN(Number(text)) ? Number(text) : text;
    }
    if (field.type === "boolean") { return text === "true"; }
    if (field.type === "attribute") {
      if (text === "true" || text === "false") { return text === "true"; }
      if (text !== "" && !isNaN(Number(text)) && !/^0\d/.test(text)) { return Number(text); }
      return text;
    }
    return text;
  };

  // --- rendering -----------------------------------------------------------------------------
  RuleEditor.prototype.render = function () {
    var tree = this.renderGroup(this.model, "", true);
    var nodes = [tree];
    if (this.model.children.length === 0) {
      nodes.unshift(el("p", { className: "small text-body-secondary mb-2 rule-empty-hint", text: this.text.empty_rule }));
    }
    this.builderEl.replaceChildren.apply(this.builderEl, nodes);
  };

  RuleEditor.prototype.childPath = function (path, mode, index) {
    return (path ? path + "." : "") + mode + "[" + index + "]";
  };

  RuleEditor.prototype.renderGroup = function (group, path, isRoot, parent) {
    var self = this;
    var box = el("div", { className: "rule-group" + (isRoot ? " rule-group-root" : ""), "data-path": path, role: "group" });
    var modeId = nextId("rule-mode");
    var mode = el("select", { className: "form-select form-select-sm w-auto rule-mode", id: modeId, disabled: this.readonly });
    ["all", "any"].forEach(function (m) {
      var opt = el("option", { value: m, text: self.text[m] });
      if (group.mode === m) { opt.selected = true; }
      mode.appendChild(opt);
    });
    mode.addEventListener("change", function () { group.mode = mode.value; self.changed(true); });
    var header = el("div", { className: "d-flex flex-wrap align-items-center gap-2 mb-2" }, [
      el("label", { className: "visually-hidden", "for": modeId, text: this.text.builder_label }), mode
    ]);
    if (!this.readonly) {
      var addCond = el("button", { type: "button", className: "btn btn-sm btn-outline-primary", text: "+ " + this.text.add_condition });
      addCond.addEventListener("click", function () { group.children.push(self.newCondition()); self.changed(true); });
      var addGroup = el("button", { type: "button", className: "btn btn-sm btn-outline-secondary", text: "+ " + this.text.add_group });
      addGroup.addEventListener("click", function () {
        group.children.push({ type: "group", mode: group.mode === "all" ? "any" : "all", children: [self.newCondition()] });
        self.changed(true);
      });
      header.appendChild(addCond);
      header.appendChild(addGroup);
      if (!isRoot) {
        var remove = el("button", { type: "button", className: "btn btn-sm btn-link text-danger ms-auto", text: this.text.remove_group });
        remove.addEventListener("click", function () { parent.children.splice(parent.children.indexOf(group), 1); self.changed(true); });
        header.appendChild(remove);
      }
    }
    box.appendChild(header);
    var list = el("ul", { className: "list-unstyled rule-children mb-0" });
    group.children.forEach(function (child, i) {
      var childPath = self.childPath(path, group.mode, i);
      var item = el("li", { className: "mb-2" });
      item.appendChild(child.type === "group" ? self.renderGroup(child, childPath, false, group) : self.renderCondition(child, childPath, group));
      list.appendChild(item);
    });
    if (!isRoot && group.children.length === 0) {
      list.appendChild(el("li", { className: "small text-body-secondary", text: this.text.empty_group }));
    }
    box.appendChild(list);
    box.appendChild(el("div", { className: "rule-node-error small text-danger", role: "alert", hidden: true }));
    return box;
  };

  RuleEditor.prototype.fieldSelect = function (cond, id) {
    var self = this;
    var select = el("select", { className: "form-select form-select-sm rule-field", id: id, disabled: this.readonly });
    var current = typeof cond.field === "string" && cond.field.indexOf("attributes.") === 0 ? "attributes." : cond.field;
    var known = false;
    this.cfg.groups.forEach(function (g) {
      var optgroup = el("optgroup", { label: g.label });
      self.cfg.fields.forEach(function (f) {
        if (f.group !== g.key) { return; }
        var opt = el("option", { value: f.field, text: f.label });
        if (f.field === current) { opt.selected = true; known = true; }
        optgroup.appendChild(opt);
      });
      if (optgroup.children.length) { select.appendChild(optgroup); }
    });
    if (!known) {  // an unknown field (the server names it): keep it visible
      select.insertBefore(el("option", { value: String(cond.field), text: String(cond.field), selected: true }), select.firstChild);
    }
    return select;
  };

  RuleEditor.prototype.renderCondition = function (cond, path, parent) {
    var self = this;
    var field = this.fieldOf(cond.field);
    var row = el("div", { className: "rule-condition-row d-flex flex-wrap align-items-start gap-2", "data-path": path });
    var fieldId = nextId("rule-field");
    var fieldSelect = this.fieldSelect(cond, fieldId);
    fieldSelect.addEventListener("change", function () {
      var next = self.fieldOf(fieldSelect.value);
      var keepValue = field && next && field.type === next.type && next.type !== "tier";
      cond.field = fieldSelect.value === "attributes." ? "attributes." : fieldSelect.value;
      if (next.ops.indexOf(cond.op) < 0) { cond.op = self.defaultOp(next); }
      if (!keepValue) { cond.value = undefined; }
      self.shapeValue(cond, next);
      self.changed(true);
    });
    row.appendChild(el("div", { className: "rule-cell" }, [
      el("label", { className: "visually-hidden", "for": fieldId, text: this.text.field }), fieldSelect]));

    if (field && field.type === "attribute") {
      var keyId = nextId("rule-attr");
      var keyInput = el("input", { type: "text", className: "form-control form-control-sm rule-attr-key", id: keyId,
                                   value: cond.field.slice("attributes.".length), placeholder: "city", disabled: this.readonly,
                                   size: 10 });
      keyInput.addEventListener("input", function () { cond.field = "attributes." + keyInput.value.trim(); self.changed(false); });
      row.appendChild(el("div", { className: "rule-cell" }, [
        el("label", { className: "visually-hidden", "for": keyId, text: this.text.attribute_key }), keyInput]));
    }

    var opId = nextId("rule-op");
    var opSelect = el("select", { className: "form-select form-select-sm w-auto rule-op", id: opId, disabled: this.readonly });
    var ops = field ? field.ops : [cond.op];
    if (ops.indexOf(cond.op) < 0) { ops = [cond.op].concat(ops); }
    ops.forEach(function (op) {
      var opt = el("option", { value: op, text: self.cfg.ops[op] || op });
      if (op === cond.op) { opt.selected = true; }
      opSelect.appendChild(opt);
    });
    opSelect.addEventListener("change", function () {
      cond.op = opSelect.value;
      if (field) { self.shapeValue(cond, field); }
      self.changed(true);
    });
    row.appendChild(el("div", { className: "rule-cell" }, [
      el("label", { className: "visually-hidden", "for": opId, text: this.text.operator }), opSelect]));

    row.appendChild(this.valueEditor(cond, field));

    if (!this.readonly) {
      var remove = el("button", { type: "button", className: "btn btn-sm btn-outline-danger rule-remove", text: "×",
                                  title: this.text.remove, "aria-label": this.text.remove });
      remove.addEventListener("click", function () { parent.children.splice(parent.children.indexOf(cond), 1); self.changed(true); });
      row.appendChild(remove);
    }
    row.appendChild(el("div", { className: "rule-node-error small text-danger w-100", role: "alert", hidden: true }));
    return row;
  };

  RuleEditor.prototype.scalarInput = function (field, value, onChange, label) {
    var self = this;
    var id = nextId("rule-value");
    var input;
    if (field && (field.type === "boolean")) {
      input = el("select", { className: "form-select form-select-sm w-auto" });
      [[true, this.text.yes], [false, this.text.no]].forEach(function (pair) {
        var opt = el("option", { value: String(pair[0]), text: pair[1] });
        if (value === pair[0]) { opt.selected = true; }
        input.appendChild(opt);
      });
    } else if (field && field.type === "tier") {
      input = el("select", { className: "form-select form-select-sm w-auto" });
      (field.values || []).forEach(function (slug) {
        var opt = el("option", { value: slug, text: (field.value_labels || {})[slug] || slug });
        if (slug === value) { opt.selected = true; }
        input.appendChild(opt);
      });
    } else {
      var type = "text";
      var attrs = {};
      if (field && NUMBER_TYPES[field.type]) { type = "number"; attrs.step = (field.type === "integer" || field.type === "days") ? "1" : "any"; }
      if (field && field.type === "datetime") { type = "date"; }
      input = el("input", Object.assign({ type: type, className: "form-control form-control-sm rule-value-input",
                                          value: value === undefined || value === null ? "" : String(value).slice(0, field && field.type === "datetime" ? 10 : undefined) }, attrs));
    }
    input.id = id;
    input.disabled = this.readonly;
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", function () {
      onChange(field ? self.parseScalar(field, input.value) : input.value);
    });
    return el("div", { className: "rule-cell" }, [el("label", { className: "visually-hidden", "for": id, text: label || this.text.value }), input]);
  };

  RuleEditor.prototype.valueEditor = function (cond, field) {
    var self = this;
    var wrap = el("div", { className: "rule-value d-flex flex-wrap align-items-center gap-1" });
    var op = cond.op;
    if (!field) { return wrap; }
    if (op === "is_null") {
      var id = nextId("rule-null");
      var select = el("select", { className: "form-select form-select-sm w-auto", id: id, disabled: this.readonly });
      [[true, this.text.empty], [false, this.text.not_empty]].forEach(function (pair) {
        var opt = el("option", { value: String(pair[0]), text: pair[1] });
        if (cond.value === pair[0]) { opt.selected = true; }
        select.appendChild(opt);
      });
      select.addEventListener("change", function () { cond.value = select.value === "true"; self.changed(false); });
      wrap.appendChild(el("label", { className: "visually-hidden", "for": id, text: this.text.value }));
      wrap.appendChild(select);
      return wrap;
    }
    if (op === "between") {
      var pair = Array.isArray(cond.value) ? cond.value : [cond.value, cond.value];
      wrap.appendChild(this.scalarInput(field, pair[0], function (v) { cond.value = [v, cond.value[1]]; self.changed(false); }, this.text.low));
      wrap.appendChild(el("span", { className: "small", text: "–" }));
      wrap.appendChild(this.scalarInput(field, pair[1], function (v) { cond.value = [cond.value[0], v]; self.changed(false); }, this.text.high));
      return wrap;
    }
    if (op === "in" || op === "not_in") {
      var values = Array.isArray(cond.value) ? cond.value : [cond.value];
      var listId = nextId("rule-list");
      var input;
      if (field.type === "tier") {
        input = el("select", { className: "form-select form-select-sm", multiple: true, id: listId, size: Math.min(4, (field.values || []).length) || 1, disabled: this.readonly });
        (field.values || []).forEach(function (slug) {
          var opt = el("option", { value: slug, text: (field.value_labels || {})[slug] || slug });
          if (values.indexOf(slug) >= 0) { opt.selected = true; }
          input.appendChild(opt);
        });
        input.addEventListener("change", function () {
          cond.value = Array.prototype.filter.call(input.options, function (o) { return o.selected; }).map(function (o) { return o.value; });
          self.changed(false);
        });
      } else {
        input = el("input", { type: "text", className: "form-control form-control-sm", id: listId, disabled: this.readonly,
                              value: values.join(", "), placeholder: this.text.list_hint, title: this.text.list_hint });
        input.addEventListener("input", function () {
          cond.value = input.value.split(",").map(function (s) { return s.trim(); }).filter(function (s) { return s !== ""; })
            .map(function (s) { return self.parseScalar(field, s); });
          self.changed(false);
        });
      }
      wrap.appendChild(el("label", { className: "visually-hidden", "for": listId, text: this.text.value + " (" + this.text.list_hint + ")" }));
      wrap.appendChild(input);
      return wrap;
    }
    if (op === "within_last" || op === "not_within_last") {
      wrap.appendChild(this.scalarInput({ type: "integer" }, cond.value, function (v) { cond.value = v; self.changed(false); }));
      return wrap;
    }
    wrap.appendChild(this.scalarInput(field, cond.value, function (v) { cond.value = v; self.changed(false); }));
    return wrap;
  };

  // --- preview --------------------------------------------------------------------------------
  RuleEditor.prototype.schedulePreview = function (delay) {
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.preview(); }, delay === undefined ? DEBOUNCE_MS : delay);
  };

  RuleEditor.prototype.csrfToken = function () {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) { return input.value; }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  };

  RuleEditor.prototype.preview = function () {
    var self = this;
    var rule;
    try { rule = JSON.parse(this.textarea.value.trim() || "{}"); } catch (exc) { return; }
    var seq = ++this.seq;
    var panel = this.root.querySelector(".rule-preview");
    panel.querySelector("[data-preview-count]").textContent = "…";
    panel.querySelector(".preview-count-label").textContent = this.text.counting;
    panel.setAttribute("aria-busy", "true");
    fetch(this.previewUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrfToken(), "X-Requested-With": "XMLHttpRequest" },
      body: JSON.stringify({ rule: rule, tier: this.tier ? Number(this.tier) : null })
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; }, function () { return { ok: false, body: null }; });
    }).then(function (result) {
      if (seq !== self.seq) { return; }  // a newer preview is on its way
      self.showPreview(result.ok ? result.body : null, result.ok ? null : result.body);
    }).catch(function () {
      if (seq === self.seq) { self.showPreview(null, { message: self.text.failed, errors: [] }); }
    });
  };

  RuleEditor.prototype.showPreview = function (data, error) {
    var self = this;
    var panel = this.root.querySelector(".rule-preview");
    panel.removeAttribute("aria-busy");
    var errorsBox = panel.querySelector(".preview-errors");
    var sample = panel.querySelector(".preview-sample");
    var sampleHeading = panel.querySelector(".preview-sample-heading");
    var inTier = panel.querySelector(".preview-in-tier");
    this.builderEl.querySelectorAll(".rule-node-invalid").forEach(function (n) { n.classList.remove("rule-node-invalid"); });
    this.builderEl.querySelectorAll(".rule-node-error").forEach(function (n) { n.hidden = true; n.textContent = ""; });
    sample.replaceChildren();
    if (error) {
      panel.querySelector("[data-preview-count]").textContent = "—";
      panel.querySelector(".preview-count-label").textContent = "";
      panel.querySelector(".preview-as-of").textContent = "";
      inTier.hidden = true;
      sampleHeading.hidden = true;
      var list = el("ul", { className: "mb-0 ps-3" });
      ((error && error.errors) || []).forEach(function (e) {
        list.appendChild(el("li", {}, [el("code", { text: e.path || self.text.root }), document.createTextNode(": " + e.message)]));
        var node = self.builderEl.querySelector('[data-path="' + (e.path === "rule" ? "" : (e.path || "")).replace(/"/g, "") + '"]');
        if (node) {
          node.classList.add("rule-node-invalid");
          var slot = node.querySelector(":scope > .rule-node-error");
          if (slot) { slot.textContent = e.message; slot.hidden = false; }
        }
      });
      errorsBox.replaceChildren(el("p", { className: "mb-1", text: (error && error.errors && error.errors.length) ? this.text.errors : ((error && error.message) || this.text.failed) }), list);
      errorsBox.hidden = false;
      return;
    }
    errorsBox.hidden = true;
    var lang = document.documentElement.lang || undefined;
    panel.querySelector("[data-preview-count]").textContent = Number(data.count).toLocaleString(lang);
    panel.querySelector(".preview-count-label").textContent = this.text.matches;
    if (data.in_tier !== undefined) {
      inTier.querySelector("[data-preview-in-tier]").textContent = Number(data.in_tier).toLocaleString(lang);
      inTier.querySelector(".preview-in-tier-label").textContent = this.text.in_tier;
      inTier.hidden = false;
    } else { inTier.hidden = true; }
    panel.querySelector(".preview-as-of").textContent = this.text.as_of + " " + new Date(data.as_of).toLocaleString(lang);
    sampleHeading.textContent = data.sample.length ? this.text.sample : this.text.no_sample;
    sampleHeading.hidden = false;
    data.sample.forEach(function (c) {
      sample.appendChild(el("li", {}, [el("a", { href: c.url, text: c.name || c.external_id }),
                                       document.createTextNode(" "), el("code", { className: "small", text: c.external_id })]));
    });
  };

  function init() {
    var cfgNode = document.getElementById("rule-builder-config");
    if (!cfgNode) { return; }
    var cfg = JSON.parse(cfgNode.textContent);
    document.querySelectorAll(".rule-editor").forEach(function (root) { root.ruleEditor = new RuleEditor(root, cfg); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
