// Uploads on the collection page, resumable and with progress. A file goes in 8 MiB pieces; each
// piece is stored in Keep by the server as it arrives and its signed locator is kept in this
// browser (localStorage, per collection, path, size and modification time). When the last piece is
// stored, the file is added to the collection. Choosing the same file again after an interruption
// sends only the pieces that have no locator yet.
(function () {
  "use strict";
  var section = document.getElementById("upload");
  var form = document.getElementById("upload-form");
  if (!section || !form) { return; }
  var input = document.getElementById("upload-files");
  var list = document.getElementById("upload-progress");
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var uuid = section.getAttribute("data-collection");
  var directory = section.getAttribute("data-directory");
  var PIECE = 8 * 1024 * 1024;
  var TRIES = 3;

  function pathOf(file) { return directory ? directory + "/" + file.name : file.name; }
  function keyOf(file) { return ["archi-upload", uuid, pathOf(file), file.size, file.lastModified].join(":"); }
  function mb(n) { return (n / 1e6).toFixed(1) + " MB"; }

  function putPiece(blob, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/collections/" + encodeURIComponent(uuid) + "/blocks");
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = function (e) { onProgress(e.loaded); };
      xhr.onload = function () {
        if (xhr.status === 200) { resolve(JSON.parse(xhr.responseText).locator); return; }
        var why = "HTTP " + xhr.status;
        try { why = JSON.parse(xhr.responseText).error; } catch (ignored) { /* not JSON */ }
        reject(new Error(why));
      };
      xhr.onerror = function () { reject(new Error("the connection was lost")); };
      xhr.send(blob);
    });
  }

  function finish(file, locators) {
    return fetch("/collections/" + encodeURIComponent(uuid) + "/files", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ path: pathOf(file), size: file.size, locators: locators })
    }).then(function (r) {
      return r.json().then(function (answer) { if (!r.ok) { throw new Error(answer.error || "HTTP " + r.status); } });
    });
  }

  function row(file) {
    var li = document.createElement("li");
    var label = document.createElement("span");
    var bar = document.createElement("progress");
    bar.max = Math.max(file.size, 1);
    bar.value = 0;
    label.textContent = pathOf(file) + ": waiting";
    bar.setAttribute("aria-label", "Upload of " + pathOf(file));
    li.appendChild(label);
    li.appendChild(bar);
    list.appendChild(li);
    return { li: li, label: label, bar: bar };
  }

  async function send(file) {
    var view = row(file);
    var key = keyOf(file);
    var stored = JSON.parse(localStorage.getItem(key) || "[]");
    var pieces = Math.ceil(file.size / PIECE);
    var kept = stored.filter(function (x) { return x; }).length;
    if (kept) { view.label.textContent = pathOf(file) + ": resuming (" + kept + " of " + pieces + " pieces already stored)"; }
    for (var i = 0; i < pieces; i++) {
      if (stored[i]) { continue; }
      var start = i * PIECE;
      var blob = file.slice(start, Math.min(file.size, start + PIECE));
      for (var attempt = 1; ; attempt++) {
        try {
          stored[i] = await putPiece(blob, function (loaded) {
            view.bar.value = start + loaded;
            view.label.textContent = pathOf(file) + ": " + Math.floor(100 * (start + loaded) / file.size) + "% (" +
              mb(start + loaded) + " of " + mb(file.size) + ")";
          });
          break;
        } catch (err) {
          if (attempt >= TRIES) {
            view.label.textContent = pathOf(file) + ": interrupted (" + err.message + "). Choose the file again to resume.";
            view.li.classList.add("bad");
            throw err;
          }
          await new Promise(function (r) { setTimeout(r, 500 * attempt); });
        }
      }
      localStorage.setItem(key, JSON.stringify(stored));
    }
    view.label.textContent = pathOf(file) + ": adding to the collection";
    await finish(file, stored);
    localStorage.removeItem(key);
    view.bar.value = view.bar.max;
    view.label.textContent = pathOf(file) + ": uploaded (" + mb(file.size) + ")";
    view.li.classList.add("ok");
  }

  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    var files = Array.prototype.slice.call(input.files);
    var failed = false;
    for (var n = 0; n < files.length; n++) {
      try { await send(files[n]); } catch (err) { failed = true; }
    }
    if (!failed) { window.location.reload(); }
  });
}());
