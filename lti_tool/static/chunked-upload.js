// A hand-in file sent in pieces (web/hand_in_uploads.py): a dance, film or music course's video is hundreds of MB,
// sent from a phone inside the learning platform's frame. The form in `data-chunked-upload` (its address, with the
// launch token as every form of the tool carries it) names the file first, so a file too large for the course or
// of a kind not accepted is refused before a byte is sent; then the pieces go one after the other, each at the
// offset the tool says it has reached, with a progress bar and a cancel button. A lost connection is retried and
// goes on from where it stopped; so does the same file chosen again after a reload of the page. Once all of it has
// arrived the tool checks the file and it becomes the hand-in, as a form's file does. Without this script (or
// without fetch and Blob.slice) the form sends the file whole.
(function () {
  "use strict";
  var RETRIES = 6; // tries of one piece after a lost connection, 1, 2, 4 ... seconds apart

  function wait(ms) {
    return new Promise(function (resolve) { window.setTimeout(resolve, ms); });
  }

  function call(method, url, body, headers, signal) {
    return window.fetch(url, { method: method, body: body, headers: headers || {}, signal: signal,
                               credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          return { ok: response.ok, status: response.status, data: data || {} };
        });
      });
  }

  function withOffset(url, offset) {
    var address = new URL(url, window.location.href);
    address.searchParams.set("offset", String(offset));
    return address.pathname + address.search;
  }

  function setUp(form) {
    var input = form.querySelector("input[type=file]");
    var box = form.querySelector("[data-upload-progress]");
    var errorBox = form.querySelector("[data-upload-error]");
    if (!input || !box || !errorBox) return;
    var bar = box.querySelector("progress");
    var status = box.querySelector("[role=status]");
    var cancel = box.querySelector("[data-upload-cancel]");
    var submit = form.querySelector("button[type=submit]");
    var newVersion = !!form.querySelector("input[name=new_version]");
    var maxBytes = Number(form.getAttribute("data-max-bytes")) || 0;
    var busy = null;
    var lastStep = -1;

    function text(name, values) {
      var words = box.getAttribute("data-text-" + name) || "";
      Object.keys(values || {}).forEach(function (key) { words = words.split("{" + key + "}").join(values[key]); });
      return words;
    }

    function megabytes(bytes) {
      return (bytes / 1048576).toLocaleString(document.documentElement.lang || undefined,
                                              { maximumFractionDigits: bytes < 1048576 ? 2 : 1 });
    }

    function showError(message) {
      errorBox.querySelector("p").textContent = message;
      errorBox.hidden = false;
      input.setAttribute("aria-invalid", "true");
    }

    function clearError() {
      errorBox.hidden = true;
      input.removeAttribute("aria-invalid");
    }

    function refusal(answer) {
      return { message: answer.data.message || text("failed") };
    }

    function progress(sent, total, resumed) {
      var percent = total ? Math.floor((sent * 100) / total) : 100;
      bar.value = percent;
      bar.textContent = percent + " %";
      // The status line is read out by screen readers: at every tenth, not at every piece.
      var step = Math.floor(percent / 10);
      if (resumed || step !== lastStep) {
        lastStep = step;
        status.textContent = text(resumed && sent > 0 ? "resumed" : "sent",
                                  { sent: megabytes(sent), total: megabytes(total), percent: percent });
      }
    }

    function done(job) {
      if (busy === job) busy = null;
      submit.disabled = false;
      cancel.hidden = true;
    }

    function retry(job, file, failures) {
      if (job.cancelled) return Promise.reject({ cancelled: true });
      if (failures >= RETRIES) return Promise.reject({ message: text("failed") });
      status.textContent = text("retrying");
      return wait(1000 * Math.pow(2, failures)).then(function () {
        if (job.cancelled) throw { cancelled: true };
        return call("GET", job.upload.url).then(function (answer) {
          if (!answer.ok) throw refusal(answer);
          return send(job, file, answer.data.offset, failures + 1);
        }, function () {
          return retry(job, file, failures + 1);
        });
      });
    }

    function send(job, file, offset, failures) {
      if (job.cancelled) return Promise.reject({ cancelled: true });
      if (offset >= file.size) return Promise.resolve();
      var piece = file.slice(offset, Math.min(offset + job.upload.chunk, file.size));
      job.controller = window.AbortController ? new AbortController() : null;
      return call("PATCH", withOffset(job.upload.url, offset), piece,
                  { "Content-Type": "application/offset+octet-stream" }, job.controller && job.controller.signal)
        .then(function (answer) {
          if (answer.ok) {
            progress(answer.data.offset, file.size, false);
            return send(job, file, answer.data.offset, 0);
          }
          if (answer.status === 409 && typeof answer.data.offset === "number") {
            return send(job, file, answer.data.offset, failures); // go on from where the tool has reached
          }
          if (answer.status >= 500 || answer.data.error === "upload_interrupted") return retry(job, file, failures);
          throw refusal(answer);
        }, function () {
          return retry(job, file, failures); // the connection was lost (or the pupil cancelled)
        });
    }

    input.addEventListener("change", function () {
      clearError();
      var file = input.files && input.files[0];
      if (file && maxBytes && file.size > maxBytes) showError(text("too-large"));
    });

    cancel.addEventListener("click", function () {
      var job = busy;
      if (!job || job.finishing) return;
      job.cancelled = true;
      if (job.controller) job.controller.abort();
      if (job.upload) call("DELETE", job.upload.url).catch(function () { return null; });
      done(job);
      bar.value = 0;
      bar.textContent = "0 %";
      box.setAttribute("data-state", "cancelled");
      status.textContent = text("cancelled");
      submit.focus();
    });

    form.addEventListener("submit", function (event) {
      var file = input.files && input.files[0];
      if (!file) return; // the browser's own check says a file is needed
      event.preventDefault();
      if (busy) return;
      clearError();
      if (maxBytes && file.size > maxBytes) {
        showError(text("too-large"));
        input.focus();
        return;
      }
      var job = { upload: null, controller: null, cancelled: false, finishing: false };
      busy = job;
      submit.disabled = true;
      box.hidden = false;
      cancel.hidden = false;
      bar.value = 0;
      lastStep = -1;
      box.setAttribute("data-state", "sending");
      status.textContent = "";
      var described = JSON.stringify({ name: file.name, size: file.size, type: file.type,
                                       lastModified: file.lastModified, newVersion: newVersion });
      call("POST", form.getAttribute("data-chunked-upload"), described, { "Content-Type": "application/json" })
        .then(function (answer) {
          if (!answer.ok) throw refusal(answer);
          job.upload = answer.data;
          progress(answer.data.offset, file.size, true);
          return send(job, file, answer.data.offset, 0);
        })
        .then(function () {
          job.finishing = true;
          cancel.hidden = true;
          box.setAttribute("data-state", "checking");
          status.textContent = text("checking");
          return call("POST", job.upload.finish, JSON.stringify({ newVersion: newVersion }),
                      { "Content-Type": "application/json" });
        })
        .then(function (answer) {
          if (!answer.ok) throw refusal(answer);
          window.location.assign(answer.data.location);
        })
        .catch(function (problem) {
          if (job.cancelled) return;
          done(job);
          box.setAttribute("data-state", "failed");
          box.hidden = true;
          showError(problem && problem.message ? problem.message : text("failed"));
        });
    });
  }

  function start() {
    if (!window.fetch || !window.Blob || !window.Blob.prototype.slice || !window.Promise || !window.URL) return;
    var forms = document.querySelectorAll("form[data-chunked-upload]");
    for (var i = 0; i < forms.length; i++) setUp(forms[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
