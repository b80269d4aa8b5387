"use strict";
(function () {
  var data = JSON.parse(document.getElementById("board-data").textContent);
  var board = document.getElementById("board");
  var sizer = document.getElementById("sizer");
  var viewport = document.getElementById("viewport");
  var panel = document.getElementById("panel");
  var search = document.getElementById("search");
  var matchesOut = document.getElementById("matches");
  // Index the notes by data-i: the chains in the data blob refer to them so.
  var all = board.querySelectorAll(".note");
  var notes = new Array(all.length);
  var names = new Array(all.length);
  for (var i = 0; i < all.length; i++) {
    var n = all[i];
    var k = +n.dataset.i;
    notes[k] = n;
    names[k] = (n.dataset.id + " " + n.textContent).toLowerCase();
  }
  var lit = [];
  var selected = null;
  var matches = [];
  var cursor = -1;

  function clearChain() {
    for (var i = 0; i < lit.length; i++) notes[lit[i]].classList.remove("hl");
    lit = [];
    board.classList.remove("focus");
  }

  function showChain(ref) {
    clearChain();
    var c = data.eventChain[ref];
    if (c === undefined) return;
    lit = data.chains[c];
    for (var i = 0; i < lit.length; i++) notes[lit[i]].classList.add("hl");
    board.classList.add("focus");
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  // A heading that may wrap only between the words of its PascalCase (and dotted) name.
  function wrappable(tag, text) {
    var e = document.createElement(tag);
    var parts = text.split(/(?<=[a-z0-9_.])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])/);
    for (var i = 0; i < parts.length; i++) {
      if (i) e.appendChild(document.createElement("wbr"));
      e.appendChild(document.createTextNode(parts[i]));
    }
    return e;
  }

  function showPanel(ref) {
    var d = data.details[ref];
    panel.textContent = "";
    if (!d) { panel.classList.remove("open"); return; }
    var close = el("button", "×", "close");
    close.type = "button";
    close.setAttribute("aria-label", "Close");
    close.addEventListener("click", function () { clearAll(); });
    panel.appendChild(close);
    var kind = el("span", d.kind, "kind k-" + d.kind);
    panel.appendChild(kind);
    panel.appendChild(wrappable("h2", d.name));
    if (d.description) panel.appendChild(el("p", d.description));
    if (d.where) panel.appendChild(el("div", d.where, "where"));
    for (var s = 0; s < d.sections.length; s++) {
      panel.appendChild(el("h3", d.sections[s][0]));
      var ul = el("ul");
      var items = d.sections[s][1];
      for (var j = 0; j < items.length; j++) ul.appendChild(el("li", items[j]));
      panel.appendChild(ul);
    }
    panel.classList.add("open");
  }

  function select(note) {
    if (selected) selected.classList.remove("selected");
    selected = note;
    if (note) note.classList.add("selected");
  }

  function clearAll() {
    clearChain();
    select(null);
    panel.classList.remove("open");
  }

  board.addEventListener("click", function (ev) {
    var note = ev.target.closest(".note");
    if (!note) { clearAll(); return; }
    activate(note);
  });

  // Notes are focusable: Enter or Space does what a click does.
  board.addEventListener("keydown", function (ev) {
    var note = ev.target.closest && ev.target.closest(".note");
    if (note && (ev.key === "Enter" || ev.key === " ")) {
      ev.preventDefault();
      activate(note);
    }
  });

  function activate(note) {
    select(note);
    showPanel(note.dataset.id);
    if (note.dataset.kind === "event") {
      if (search.value) { search.value = ""; runSearch(); }
      showChain(note.dataset.id);
    }
    else clearChain();
  }

  function runSearch() {
    var q = search.value.trim().toLowerCase();
    for (var i = 0; i < matches.length; i++) notes[matches[i]].classList.remove("match");
    matches = [];
    cursor = -1;
    if (!q) {
      board.classList.remove("searching");
      matchesOut.textContent = "";
      return;
    }
    clearChain();  // one highlight at a time: the search replaces the chain
    for (var k = 0; k < names.length; k++) {
      if (names[k].indexOf(q) !== -1) {
        matches.push(k);
        notes[k].classList.add("match");
      }
    }
    board.classList.add("searching");
    matchesOut.textContent = matches.length + (matches.length === 1 ? " match" : " matches");
  }

  search.addEventListener("input", runSearch);
  search.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && matches.length) {
      cursor = (cursor + 1) % matches.length;
      var note = notes[matches[cursor]];
      select(note);
      note.scrollIntoView({ block: "center", inline: "center" });
      matchesOut.textContent = (cursor + 1) + " / " + matches.length;
    }
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") {
      if (document.activeElement === search && search.value) { search.value = ""; runSearch(); }
      else clearAll();
    }
    if (ev.key === "/" && document.activeElement !== search) { ev.preventDefault(); search.focus(); }
  });

  document.getElementById("lanes").addEventListener("change", function (ev) {
    var top = parseFloat(ev.target.value);
    if (!isNaN(top)) viewport.scrollTo({ top: top * scale, left: 0 });
    ev.target.value = "";
  });

  var scale = 1;
  var steps = [0.25, 0.4, 0.55, 0.7, 0.85, 1, 1.25, 1.5];
  var zoomLevel = document.getElementById("zoomlevel");
  var width = parseFloat(board.style.width);
  var height = parseFloat(board.style.height);
  function setScale(to) {
    scale = to;
    board.style.transform = "scale(" + scale + ")";
    sizer.style.width = (width * scale) + "px";
    sizer.style.height = (height * scale) + "px";
    zoomLevel.textContent = Math.round(scale * 100) + "%";
  }
  function zoom(to) {
    // Keep the point in the middle of the viewport where it is.
    var cx = (viewport.scrollLeft + viewport.clientWidth / 2) / scale;
    var cy = (viewport.scrollTop + viewport.clientHeight / 2) / scale;
    setScale(to);
    viewport.scrollTo(cx * scale - viewport.clientWidth / 2, cy * scale - viewport.clientHeight / 2);
  }
  // The scale at which the whole width of the board is in the window (never above 100%).
  function fitted() {
    return Math.max(0.1, Math.min(1, (viewport.clientWidth - 2) / width));
  }
  document.querySelector(".zoom").addEventListener("click", function (ev) {
    var b = ev.target.closest("button");
    if (!b) return;
    var dir = parseInt(b.dataset.zoom, 10);
    if (dir === 0) {
      // Toggle between 100% and "whole width in view".
      zoom(scale !== 1 ? 1 : fitted());
      return;
    }
    // The next step below or above the current scale (which may be the fitted one).
    var to = scale;
    for (var i = 0; i < steps.length; i++) {
      var s = dir > 0 ? steps[i] : steps[steps.length - 1 - i];
      if (dir > 0 ? s > scale + 0.001 : s < scale - 0.001) { to = s; break; }
    }
    zoom(to);
  });
  // The board opens fitted to the window: its whole width in view.
  setScale(fitted());
  // Fitting may add or remove the vertical scroll bar, which changes the room: fit again.
  if (Math.abs(fitted() - scale) > 0.001) setScale(fitted());
})();
