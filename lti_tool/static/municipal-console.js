// The municipal console: after a refused change the seat budget field of that row takes the focus (the typed number
// still in it, the reason beside it); after a saved one, the row's "Saved" mark does. Inside the platform's frame the
// page does not scroll by itself (the frame grows with it), so the fragment alone would not bring the row into view.
(function () {
  "use strict";
  function start() {
    var target = document.querySelector("[data-focus]");
    if (!target) return;
    target.focus({ preventScroll: true });
    if (target.scrollIntoView) target.scrollIntoView({ block: "center" });
  }
  // After "load": a frame's newly loaded page gets the focus reset to its body until then.
  if (document.readyState === "complete") start();
  else window.addEventListener("load", start);
})();
