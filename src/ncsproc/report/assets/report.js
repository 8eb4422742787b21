/* ncsproc review report: sortable tables and the "copy an overrides.csv line" control.
   Inline in every page (no network); everything degrades to plain HTML without it. */
(function () {
  "use strict";

  function key(row, i) {
    var cell = row.cells[i];
    if (!cell) { return ""; }
    var s = cell.getAttribute("data-sort");
    return s === null ? cell.textContent.trim() : s;
  }

  function sortBy(th) {
    var table = th.closest("table");
    if (!table || !table.tBodies.length) { return; }
    var tbody = table.tBodies[0];
    var i = Array.prototype.indexOf.call(th.parentNode.cells, th);
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var rows = Array.prototype.slice.call(tbody.rows);
    var keys = rows.map(function (r) { return key(r, i); });
    var numeric = keys.every(function (k) { return k === "" || isFinite(Number(k)); });
    var order = rows.map(function (r, j) { return j; });
    order.sort(function (a, b) {
      var x = keys[a], y = keys[b];
      if (x === y) { return a - b; }
      if (x === "") { return 1; }   /* empty cells last in both directions */
      if (y === "") { return -1; }
      var c = numeric ? Number(x) - Number(y)
        : x.localeCompare(y, undefined, { numeric: true, sensitivity: "base" });
      return c !== 0 ? dir * c : a - b;
    });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    order.forEach(function (j) { tbody.appendChild(rows[j]); });
  }

  function say(el, text) {
    if (el) { el.textContent = text; }
  }

  function copyLine(el) {
    var line = el.getAttribute("data-line");
    var section = el.closest("section");
    var box = section ? section.querySelector("textarea.ovr-out") : null;
    var status = section ? section.querySelector(".ovr-status") : null;
    if (box) {
      box.value = line;
      box.focus();
      box.select();
    }
    var manual = "Copy the selected line (Ctrl+C) into overrides.csv, then fill in time_ms, " +
      "reviewer and reason.";
    say(status, manual);
    try {
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(line).then(function () {
          say(status, "Copied: paste it into overrides.csv, then fill in time_ms, reviewer " +
            "and reason.");
        }, function () { say(status, manual); });
      }
    } catch (e) {
      say(status, manual);
    }
  }

  function activate(target) {
    if (!target || !target.closest) { return false; }
    var th = target.closest("table.sortable thead th");
    if (th) { sortBy(th); return true; }
    var el = target.closest("[data-line]");
    if (el) { copyLine(el); return true; }
    return false;
  }

  document.addEventListener("click", function (ev) {
    if (activate(ev.target)) { ev.preventDefault(); }
  });
  document.addEventListener("keydown", function (ev) {
    if ((ev.key === "Enter" || ev.key === " ") && ev.target &&
        ev.target.matches && ev.target.matches("table.sortable thead th, [data-line]")) {
      if (activate(ev.target)) { ev.preventDefault(); }
    }
  });
  document.documentElement.className += " js";
}());
