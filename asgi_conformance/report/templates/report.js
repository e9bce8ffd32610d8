(function () {
  "use strict";
  // An enhancement only: every cell, filter target and detail is already in the HTML.
  // This script reads data- attributes and moves existing nodes; it never parses markup.
  var doc = document;
  var matrix = doc.getElementById("matrix");
  var form = doc.getElementById("filters");
  var dialog = doc.getElementById("detail");
  if (!matrix || !form) { return; }
  doc.documentElement.className += " js";
  form.hidden = false;

  var rows = Array.prototype.slice.call(matrix.querySelectorAll("tr.scenario"));
  var bodies = Array.prototype.slice.call(matrix.querySelectorAll("tbody.area"));
  var columns = Array.prototype.slice.call(doc.querySelectorAll("table [data-target]"));
  var shown = doc.getElementById("shown");
  var knownLevels = {};
  form.querySelectorAll('input[name="level"]').forEach(function (i) { knownLevels[i.value] = true; });

  function checked(name) {
    var out = {};
    form.querySelectorAll('input[name="' + name + '"]').forEach(function (i) { if (i.checked) { out[i.value] = true; } });
    return out;
  }

  function apply() {
    var area = form.elements.area.value;
    var query = form.elements.q.value.trim().toLowerCase();
    var levels = checked("level");
    var verdicts = checked("verdict");
    var targets = checked("target");
    columns.forEach(function (el) { el.hidden = !targets[el.getAttribute("data-target")]; });
    var count = 0;
    rows.forEach(function (tr) {
      var level = tr.getAttribute("data-level");
      var ok = (!area || tr.getAttribute("data-area") === area) && (!knownLevels[level] || levels[level]);
      if (ok && query) {
        ok = tr.getAttribute("data-id").toLowerCase().indexOf(query) >= 0 ||
          tr.querySelector("th").textContent.toLowerCase().indexOf(query) >= 0;
      }
      if (ok) {
        ok = Array.prototype.some.call(tr.querySelectorAll("td.cell"), function (td) {
          var verdict = td.getAttribute("data-verdict");
          return targets[td.getAttribute("data-target")] && (verdicts[verdict] || verdict === "other");
        });
      }
      tr.hidden = !ok;
      if (ok) { count += 1; }
    });
    bodies.forEach(function (body) { body.hidden = !body.querySelector("tr.scenario:not([hidden])"); });
    if (shown) { shown.textContent = count + " of " + rows.length + " scenarios shown"; }
  }

  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
  var preset = form.querySelector('[data-preset="problems"]');
  if (preset) {
    preset.addEventListener("click", function () {
      form.querySelectorAll('input[name="verdict"]').forEach(function (i) {
        i.checked = i.value === "fail" || i.value === "warn" || i.value === "error";
      });
      apply();
    });
  }

  // The detail view: the cell's section (already in the page) shown in a dialog.
  if (!dialog || typeof dialog.showModal !== "function") { return; }
  var body = dialog.querySelector(".dialog-body");

  function withoutIds(node) {
    node.removeAttribute("id");
    node.querySelectorAll("[id]").forEach(function (n) { n.removeAttribute("id"); });
    return node;
  }

  function openCell(id) {
    var cell = id ? doc.getElementById(id) : null;
    if (!cell || !cell.classList.contains("cell-detail")) { return false; }
    var section = cell.closest(".scenario-detail");
    var head = section ? section.querySelector(".scenario-head") : null;
    while (body.firstChild) { body.removeChild(body.firstChild); }
    if (head) { body.appendChild(withoutIds(head.cloneNode(true))); }
    body.appendChild(withoutIds(cell.cloneNode(true)));
    if (!dialog.open) { dialog.showModal(); }
    dialog.scrollTop = 0;
    return true;
  }

  matrix.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.cell-link") : null;
    if (!link) { return; }
    var id = decodeURIComponent((link.getAttribute("href") || "").slice(1));
    if (openCell(id)) {
      event.preventDefault();
      try { window.history.replaceState(null, "", "#" + id); } catch (e) { /* file: URLs may refuse */ }
    }
  });
  dialog.querySelector(".close").addEventListener("click", function () { dialog.close(); });
  dialog.addEventListener("click", function (event) { if (event.target === dialog) { dialog.close(); } });
  function fromHash() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    if (!openCell(id) && dialog.open) { dialog.close(); }
  }
  window.addEventListener("hashchange", fromHash);
  if (window.location.hash) { fromHash(); }
}());
