// Drafts kept on this device: what a pupil types in a hand-in or a message to the teacher is saved in the browser
// as they type (localStorage), and put back when the page is opened again, for example after the session ended
// and the course was opened anew from the learning platform. Each field sits in an element with
// `data-draft-key`: the page's pupil key (a keyed hash made by the tool, never the platform's user id), the
// assignment and the field. The page shown after the text was accepted marks it `data-draft-clear`: the draft is
// forgotten. A draft older than MAX_AGE_DAYS is forgotten too. The "session ended" page marks the text that was
// sent too late `data-draft-keep`: it is kept as the draft of the field it came from.
(function () {
  "use strict";
  var PREFIX = "kulturskola.draft.";
  var MAX_AGE_DAYS = 60;

  function storage() {
    try {
      var store = window.localStorage;
      store.setItem(PREFIX + "probe", "1");
      store.removeItem(PREFIX + "probe");
      return store;
    } catch (e) {
      return null; // storage switched off or full: the page works as before, without drafts
    }
  }

  function read(store, key) {
    try {
      var kept = JSON.parse(store.getItem(key) || "null");
      if (!kept || typeof kept.text !== "string") return null;
      if (!(kept.at > Date.now() - MAX_AGE_DAYS * 86400000)) {
        store.removeItem(key);
        return null;
      }
      return kept.text;
    } catch (e) {
      store.removeItem(key);
      return null;
    }
  }

  function write(store, key, text) {
    try {
      if (text.trim()) store.setItem(key, JSON.stringify({ text: text, at: Date.now() }));
      else store.removeItem(key);
    } catch (e) {
      // full: the draft is not kept this time
    }
  }

  function show(scope, selector) {
    var element = scope.querySelector(selector);
    if (element) element.hidden = false;
  }

  function keep(store, scope) {
    var key = PREFIX + scope.getAttribute("data-draft-key");
    var field = scope.querySelector("textarea");
    if (!field) return;
    if (scope.hasAttribute("data-draft-keep")) {
      write(store, key, field.value); // the "session ended" page: a text that was sent too late, kept for later
      return;
    }
    show(scope, "[data-draft-note]");
    if (scope.hasAttribute("data-draft-clear")) {
      store.removeItem(key);
    } else {
      var kept = read(store, key);
      if (kept !== null && kept !== field.value) {
        field.value = kept;
        show(scope, "[data-draft-restored]");
      }
    }
    field.addEventListener("input", function () {
      write(store, key, field.value);
    });
  }

  function start() {
    var store = storage();
    if (!store) return;
    var scopes = document.querySelectorAll("[data-draft-key]");
    for (var i = 0; i < scopes.length; i++) keep(store, scopes[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
