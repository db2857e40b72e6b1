/*
 * The sandbox platform's side of platform storage (lti.capabilities, lti.put_data, lti.get_data and the older
 * org.imsglobal.lti.* subjects): what Canvas, Brightspace, Blackboard and Sakai do for a tool in their iframe.
 * Values are kept per tool origin for the page's lifetime and only given back to the same origin.
 *
 * On the sandbox page (the script's data-role="page") the answer depends on the "Platform storage" choice:
 * "parent" answers put/get itself, "capabilities" answers lti.capabilities naming the forwarding frame, "frame"
 * and "none" answer nothing (the forwarding frame, data-role="frame", answers put/get).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var role = script.getAttribute("data-role");
  var frameName = script.getAttribute("data-frame") || "post_message_forwarding";
  var stored = {};
  // "ignore": subjects this platform leaves unanswered (to try a platform that never answers).
  var state = window.sandboxStorage = {ignore: [], messages: []};

  function mode() {
    var select = document.getElementById("storage");
    return select ? select.value : "none";
  }

  function bare(subject) {
    if (typeof subject !== "string") { return null; }
    if (subject.indexOf("org.imsglobal.lti.") === 0) { return subject.slice(18); }
    if (subject.indexOf("lti.") === 0) { return subject.slice(4); }
    return null;
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    var subject = data && typeof data === "object" ? bare(data.subject) : null;
    if (!subject || !event.source) { return; }
    state.messages.push({subject: data.subject, origin: event.origin, role: role});
    if (state.ignore.indexOf(subject) >= 0) { return; }
    var answers = role === "frame" ? ["put_data", "get_data"]
      : {parent: ["capabilities", "put_data", "get_data"], capabilities: ["capabilities"]}[mode()] || [];
    if (answers.indexOf(subject) < 0) { return; }
    var reply = {subject: data.subject + ".response", message_id: data.message_id};
    if (subject === "capabilities") {
      var frame = mode() === "capabilities" ? frameName : "_parent";
      reply.supported_messages = [
        {subject: "lti.capabilities"},
        {subject: "lti.put_data", frame: frame},
        {subject: "lti.get_data", frame: frame}
      ];
    } else if (typeof data.key !== "string" || !data.key) {
      reply.error = {code: "bad_request", message: "no key"};
    } else if (subject === "put_data") {
      stored[event.origin] = stored[event.origin] || {};
      stored[event.origin][data.key] = data.value;
      reply.key = data.key;
      reply.value = data.value;
    } else {
      var values = stored[event.origin] || {};
      reply.key = data.key;
      if (Object.prototype.hasOwnProperty.call(values, data.key)) {
        reply.value = values[data.key];
      } else {
        reply.error = {code: "not_found", message: "no value for this key"};
      }
    }
    event.source.postMessage(reply, event.origin);
  });
})();
