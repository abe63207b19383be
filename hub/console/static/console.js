/* hub console: the little JavaScript the pages use (no framework, nothing loaded from elsewhere).
   - the flow editor checks the YAML against the server as you type;
   - an execution page follows the execution over server-sent events and refreshes its live part;
   - keyboard: "g" then f/e/t/a/p/v opens Flows/Executions/Traces/Approvals/Prompts/eVals, "/" focuses the filter. */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  /* -- keyboard ------------------------------------------------------------------------------ */
  var pendingG = false;
  var targets = {f: "/flows", e: "/executions", t: "/traces", a: "/approvals", p: "/prompts", v: "/evals"};
  document.addEventListener("keydown", function (ev) {
    var tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "/") {
      var filter = document.querySelector("[data-filter]");
      if (filter) { ev.preventDefault(); filter.focus(); }
      return;
    }
    if (pendingG && targets[ev.key]) { pendingG = false; window.location.href = targets[ev.key]; return; }
    pendingG = ev.key === "g";
  });

  document.addEventListener("submit", function (ev) {
    var button = ev.submitter;
    var text = (button && button.getAttribute("data-confirm")) || ev.target.getAttribute("data-confirm");
    if (text && !window.confirm(text)) ev.preventDefault();
  });

  /* -- the editor ---------------------------------------------------------------------------- */
  var source = document.getElementById("source");
  if (source && source.dataset.validate) {
    var list = document.getElementById("problems");
    var status = document.getElementById("check-status");
    var timer = null, seq = 0;
    var gotoLine = function (line, column) {
      var lines = source.value.split("\n"), pos = 0;
      for (var i = 0; i < line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
      pos += Math.max((column || 1) - 1, 0);
      source.focus();
      source.setSelectionRange(pos, pos);
      var lineHeight = parseFloat(getComputedStyle(source).lineHeight) || 18;
      source.scrollTop = Math.max(0, (line - 4) * lineHeight);
    };
    var show = function (result) {
      list.innerHTML = "";
      if (result.valid) {
        status.textContent = "Valid: " + result.flow;
        status.className = "status ok";
        return;
      }
      status.textContent = result.errors.length + (result.errors.length === 1 ? " problem" : " problems");
      status.className = "status bad";
      result.errors.forEach(function (err) {
        var item = document.createElement("li");
        var where = err.line ? "line " + err.line + ", column " + (err.column || 1) : "the whole flow";
        var button = document.createElement("button");
        button.type = "button";
        button.className = "linkish";
        button.textContent = where;
        button.addEventListener("click", function () { gotoLine(err.line || 1, err.column || 1); });
        item.appendChild(button);
        item.appendChild(document.createTextNode(" " + err.path + ": " + err.message));
        item.className = "problem";
        list.appendChild(item);
      });
    };
    var check = function () {
      var mine = ++seq;
      status.textContent = "Checking…";
      status.className = "status";
      fetch(source.dataset.validate, {method: "POST", body: source.value, credentials: "same-origin",
        headers: {"Content-Type": "application/x-yaml", "X-CSRF-Token": csrf}})
        .then(function (r) { return r.json(); })
        .then(function (result) { if (mine === seq) show(result); })
        .catch(function () { if (mine === seq) { status.textContent = "Could not reach the server"; status.className = "status bad"; } });
    };
    source.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(check, 300); });
    if (source.value !== source.defaultValue) check();  /* typed before this script ran (it is deferred) */
    document.querySelectorAll("[data-goto-line]").forEach(function (el) {
      el.addEventListener("click", function () { gotoLine(+el.dataset.gotoLine, +el.dataset.gotoColumn || 1); });
    });
  }

  /* -- live execution ------------------------------------------------------------------------ */
  var live = document.getElementById("live");
  if (live && live.dataset.events && window.EventSource) {
    var busy = false, again = false, ended = false;
    var indicator = document.getElementById("live-indicator");
    var refresh = function () {
      if (busy) { again = true; return; }
      busy = true;
      fetch(live.dataset.src, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null) {
            var open = Array.prototype.map.call(live.querySelectorAll("details[open][id]"), function (d) { return d.id; });
            live.innerHTML = html;
            open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
          }
        })
        .finally(function () { busy = false; if (again) { again = false; setTimeout(refresh, 150); } });
    };
    var stream = new EventSource(live.dataset.events);
    ["step", "execution", "log"].forEach(function (name) { stream.addEventListener(name, refresh); });
    stream.addEventListener("end", function () {
      ended = true;
      stream.close();
      if (indicator) indicator.hidden = true;
      refresh();
    });
    stream.onerror = function () { if (ended) stream.close(); };
  }
})();
