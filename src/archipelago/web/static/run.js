// The run and step pages, live: the server's EventSource stream sends the run as JSON whenever it
// changed; states, times and exit codes are updated in place, and the page's body is fetched anew
// (server-rendered) when steps appear or bytes moved change. The step page also re-reads its logs
// whenever the step's log collection changes (a running container publishes it every few seconds).
(function () {
  "use strict";
  var body = document.getElementById("run-body");
  var stepPage = document.getElementById("step");
  var root = body || stepPage;
  if (!root || !window.EventSource) { return; }
  var runId = root.getAttribute("data-run");
  var note = document.getElementById("live-note");
  var structure = body ? body.getAttribute("data-structure") : null;
  var logOf = stepPage ? stepPage.getAttribute("data-log") : null;
  var latest = null;  // the newest state heard: laid again over a body fetched meanwhile

  function when(ts) { return ts ? ts.slice(0, 19).replace("T", " ") + " UTC" : "\u2014"; }

  function setStateClass(el, state) {
    var stale = [];
    el.classList.forEach(function (c) { if (c.indexOf("s-") === 0) { stale.push(c); } });
    stale.forEach(function (c) { el.classList.remove(c); });
    el.classList.add("s-" + state.replace(/ /g, "-"));
  }

  function setText(scope, field, text) {
    var el = scope.querySelector('[data-field="' + field + '"]');
    if (el && el.textContent !== text) { el.textContent = text; }
    return el;
  }

  function applyStep(step, scope) {
    var state = setText(scope, "state", step.state);
    if (state) { setStateClass(state, step.state); }
    setText(scope, "started_at", when(step.started_at));
    setText(scope, "finished_at", when(step.finished_at));
    setText(scope, "exit_code", step.exit_code === null ? "\u2014" : String(step.exit_code));
  }

  function applyNode(step) {
    var node = document.getElementById("node-" + step.uuid);
    if (!node) { return; }
    setStateClass(node, step.state);
    var text = node.querySelector(".state-text");
    if (text) { text.textContent = step.state; }
    node.setAttribute("aria-label", step.name + " on " + step.cluster + ": " + step.state);
  }

  function refreshBody(next) {
    fetch("/runs/" + encodeURIComponent(runId) + "?part=body", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var keep = document.activeElement && document.activeElement.id;
        body.innerHTML = html;  // the server's page, escaped there
        body.setAttribute("data-structure", next);
        if (latest) { applySteps(latest); }
        if (keep && document.getElementById(keep)) { document.getElementById(keep).focus(); }
      })
      .catch(function () { structure = null; });  // tried again at the next change
  }

  function refreshLogs() {
    var stepId = stepPage.getAttribute("data-step");
    stepPage.querySelectorAll("pre[data-log-file]").forEach(function (pre) {
      var url = "/runs/" + encodeURIComponent(runId) + "/steps/" + encodeURIComponent(stepId) + "/log/" +
        encodeURIComponent(pre.getAttribute("data-log-file"));
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (text) {
          if (text === null || text === pre.textContent) { return; }
          var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          pre.textContent = text;  // text, never markup
          if (atEnd) { pre.scrollTop = pre.scrollHeight; }
        });
    });
  }

  function apply(run) {
    latest = run;
    var summary = document.getElementById("run-state");
    if (summary) { summary.textContent = run.state; setStateClass(summary, run.state); }
    applySteps(run);
    if (body && run.structure !== structure) { structure = run.structure; refreshBody(run.structure); }
    document.dispatchEvent(new CustomEvent("archi:run-state", { detail: run }));
  }

  function applySteps(run) {
    var steps = run.runner ? [run.runner].concat(run.steps) : run.steps;
    steps.forEach(function (step) {
      if (body) {
        var row = document.getElementById("row-" + step.uuid);
        if (row) { applyStep(step, row); }
        applyNode(step);
      } else if (step.uuid === stepPage.getAttribute("data-step")) {
        applyStep(step, stepPage);
        if (step.log && step.log !== logOf) { logOf = step.log; refreshLogs(); }
      }
    });
  }

  if (body && body.getAttribute("data-finished") === "yes") { return; }
  var source = new EventSource("/runs/" + encodeURIComponent(runId) + "/live");
  source.addEventListener("open", function () { if (note) { note.textContent = "(live)"; } });
  source.addEventListener("state", function (e) { apply(JSON.parse(e.data)); });
  source.addEventListener("end", function () {
    source.close();
    if (note) { note.textContent = "(finished)"; }
    root.setAttribute("data-finished", "yes");
  });
  source.addEventListener("failure", function (e) {
    source.close();
    if (note) { note.textContent = "(no longer live: " + JSON.parse(e.data) + ")"; }
  });
  source.addEventListener("error", function () { if (note && source.readyState !== 2) { note.textContent = "(reconnecting\u2026)"; } });
}());
