"use strict";
// Rows stream in store order (the server cannot know the whole folder up front);
// once the document is complete, sort it: folders first, then by the chosen column.
document.addEventListener("DOMContentLoaded", function () {
  var body = document.getElementById("rows");
  var filter = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var nomatch = document.getElementById("nomatch");
  var heads = Array.prototype.slice.call(document.querySelectorAll("#listing thead th"));
  var rows = Array.prototype.slice.call(body.rows);
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  var names = rows.map(function (r) { return r.getAttribute("data-name"); });
  rows.forEach(function (r, i) { r._name = names[i]; r._lower = names[i].toLowerCase(); });
  var state = { key: "name", dir: 1 };

  function compare(a, b) {
    var ad = a.classList.contains("dir"), bd = b.classList.contains("dir");
    if (ad !== bd) { return ad ? -1 : 1; }
    var c = 0;
    if (state.key === "size") {
      c = Number(a.getAttribute("data-size")) - Number(b.getAttribute("data-size"));
    } else if (state.key === "mtime") {
      var am = a.getAttribute("data-mtime"), bm = b.getAttribute("data-mtime");
      c = am < bm ? -1 : am > bm ? 1 : 0;
    }
    if (c === 0) { c = collator.compare(a._name, b._name) || (a._name < b._name ? -1 : a._name > b._name ? 1 : 0); }
    return c * state.dir;
  }

  function sort() {
    rows.sort(compare);
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r); });
    body.appendChild(frag);
    heads.forEach(function (th) {
      var key = th.querySelector("button").getAttribute("data-key");
      if (key === state.key) {
        th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
  }

  function applyFilter() {
    var q = filter.value.trim().toLowerCase();
    var visible = 0;
    rows.forEach(function (r) {
      var hide = q !== "" && r._lower.indexOf(q) < 0;
      r.hidden = hide;
      if (!hide) { visible += 1; }
    });
    shown.textContent = q === "" ? "" : visible + " shown";
    nomatch.hidden = !(q !== "" && visible === 0);
  }

  heads.forEach(function (th) {
    var button = th.querySelector("button");
    button.addEventListener("click", function () {
      var key = button.getAttribute("data-key");
      state = { key: key, dir: state.key === key ? -state.dir : 1 };
      sort();
    });
  });
  filter.addEventListener("input", applyFilter);
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "/" && document.activeElement !== filter) {
      ev.preventDefault();
      filter.focus();
    } else if (ev.key === "Escape" && document.activeElement === filter) {
      filter.value = "";
      applyFilter();
    }
  });
  sort();
  if (filter.value) { applyFilter(); }
});
