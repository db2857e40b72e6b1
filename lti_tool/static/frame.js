// Inside the learning platform's frame: no second header above the platform's own, and the frame grows with
// the page (the LTI `lti.frameResize` message, read by Canvas, Brightspace and others) instead of showing a
// second scrollbar. Only the page's height is sent.
(function () {
  "use strict";
  if (window.self === window.top) return;
  document.documentElement.classList.add("in-frame");
  var last = 0;
  function send() {
    var height = Math.ceil(document.documentElement.scrollHeight);
    if (!height || height === last) return;
    last = height;
    window.parent.postMessage({ subject: "lti.frameResize", height: height }, "*");
  }
  function start() {
    send();
    if (window.ResizeObserver) new ResizeObserver(send).observe(document.body);
    else window.addEventListener("resize", send);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
