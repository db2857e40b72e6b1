// Unit tests of the platform-storage message handling (lti_tool/static/lti-storage.js), without a browser.
// Run: node --test tests/js/   (tests/test_lti_storage_js.py runs them under pytest).
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const api = require("../../lti_tool/static/lti-storage.js");

const PLATFORM = "https://lms.example";

/* A window with message listeners and timers that the test drives. */
function fakeWindow({parent = null, opener = null, frames = {}} = {}) {
  const listeners = new Set();
  const win = {
    crypto: crypto.webcrypto, parent: null, opener, frames,
    addEventListener: (type, fn) => type === "message" && listeners.add(fn),
    removeEventListener: (type, fn) => listeners.delete(fn),
    setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (t) => clearTimeout(t),
    dispatch: (event) => [...listeners].forEach((fn) => fn(event)),
    listenerCount: () => listeners.size,
  };
  win.parent = parent || win;
  win.top = parent ? parent : win;
  return win;
}

/* A platform window that records what it was sent and can answer through the tool's window. */
function fakePlatform() {
  return {sent: [], frames: {}, postMessage(message, targetOrigin) { this.sent.push({message, targetOrigin}); }};
}

test("isResponse needs the platform's origin, our message_id and the matching subject", () => {
  const expected = {origin: PLATFORM, messageId: "m1", subject: "lti.get_data"};
  const ok = {origin: PLATFORM, data: {subject: "lti.get_data.response", message_id: "m1", value: "s"}};
  assert.equal(api.isResponse(ok, expected), true);
  assert.equal(api.isResponse({...ok, origin: "https://evil.example"}, expected), false);
  assert.equal(api.isResponse({...ok, origin: "null"}, expected), false);
  assert.equal(api.isResponse({...ok, data: {...ok.data, message_id: "m2"}}, expected), false);
  assert.equal(api.isResponse({...ok, data: {...ok.data, subject: "lti.put_data.response"}}, expected), false);
  assert.equal(api.isResponse({...ok, data: "lti.get_data.response"}, expected), false);
  assert.equal(api.isResponse({...ok, data: null}, expected), false);
});

test("the older org.imsglobal.lti.* subjects are accepted both ways", () => {
  const expected = {origin: PLATFORM, messageId: "m1", subject: "lti.put_data"};
  const old = {origin: PLATFORM, data: {subject: "org.imsglobal.lti.put_data.response", message_id: "m1"}};
  assert.equal(api.isResponse(old, expected), true);
  const oldRequest = {origin: PLATFORM, messageId: "m1", subject: "org.imsglobal.lti.put_data"};
  assert.equal(api.isResponse({origin: PLATFORM, data: {subject: "lti.put_data.response", message_id: "m1"}},
                              oldRequest), true);
  assert.equal(api.bareSubject("org.imsglobal.lti.get_data"), "get_data");
  assert.equal(api.bareSubject("imsglobal.get_data"), null);
});

test("targetWindow: _parent, a named frame of the parent, the opener of a new window, none at top level", () => {
  const platform = fakePlatform();
  platform.frames.post_message_forwarding = {name: "forwarding"};
  const framed = fakeWindow({parent: platform});
  assert.equal(api.targetWindow(framed, "_parent"), platform);
  assert.equal(api.targetWindow(framed, null), platform);
  assert.equal(api.targetWindow(framed, "post_message_forwarding"), platform.frames.post_message_forwarding);
  assert.equal(api.targetWindow(framed, "missing"), null);
  const opened = fakeWindow({opener: platform});
  assert.equal(api.targetWindow(opened, "_parent"), platform);
  assert.equal(api.targetWindow(fakeWindow(), "_parent"), null);
});

test("storageFromCapabilities finds put_data and get_data and their frame", () => {
  assert.deepEqual(api.storageFromCapabilities({supported_messages: [
    {subject: "lti.capabilities"}, {subject: "lti.put_data", frame: "lti_storage_frame"},
    {subject: "lti.get_data", frame: "lti_storage_frame"}]}),
  {frame: "lti_storage_frame", putSubject: "lti.put_data", getSubject: "lti.get_data"});
  assert.deepEqual(api.storageFromCapabilities({supported_messages: [
    {subject: "org.imsglobal.lti.put_data"}, {subject: "org.imsglobal.lti.get_data"}]}),
  {frame: "_parent", putSubject: "org.imsglobal.lti.put_data", getSubject: "org.imsglobal.lti.get_data"});
  assert.equal(api.storageFromCapabilities({supported_messages: [{subject: "lti.put_data"}]}), null);
  assert.equal(api.storageFromCapabilities({}), null);
  assert.equal(api.storageFromCapabilities(null), null);
});

test("request posts to the platform's origin, never *, and resolves on the platform's answer only", async () => {
  const platform = fakePlatform();
  const win = fakeWindow({parent: platform});
  const pending = api.request(win, {target: platform, origin: PLATFORM, subject: "lti.get_data",
                                    payload: {key: "state_abc"}, timeout: 1000});
  assert.equal(platform.sent.length, 1);
  const {message, targetOrigin} = platform.sent[0];
  assert.equal(targetOrigin, PLATFORM);
  assert.equal(message.subject, "lti.get_data");
  assert.equal(message.key, "state_abc");
  assert.match(message.message_id, /^[0-9a-f]{32}$/);
  // A forged answer from another origin, then one with another id: both ignored.
  win.dispatch({origin: "https://evil.example", data: {subject: "lti.get_data.response", message_id: message.message_id, value: "abc"}});
  win.dispatch({origin: PLATFORM, data: {subject: "lti.get_data.response", message_id: "other", value: "forged"}});
  win.dispatch({origin: PLATFORM, data: {subject: "lti.get_data.response", message_id: message.message_id, value: "abc"}});
  const answer = await pending;
  assert.equal(answer.value, "abc");
  assert.equal(win.listenerCount(), 0);
});

test("request rejects with the platform's error code, on time-out, and without a target", async () => {
  const platform = fakePlatform();
  const win = fakeWindow({parent: platform});
  const failing = api.request(win, {target: platform, origin: PLATFORM, subject: "lti.put_data", timeout: 1000});
  const id = platform.sent[0].message.message_id;
  win.dispatch({origin: PLATFORM, data: {subject: "lti.put_data.response", message_id: id,
                                         error: {code: "storage_exhaustion", message: "full"}}});
  await assert.rejects(failing, /storage_exhaustion/);
  await assert.rejects(api.request(win, {target: platform, origin: PLATFORM, subject: "lti.get_data", timeout: 20}),
                       /timeout/);
  assert.equal(win.listenerCount(), 0);
  await assert.rejects(api.request(win, {target: null, origin: PLATFORM, subject: "lti.get_data", timeout: 20}),
                       /no_target/);
});

test("getState asks lti.capabilities first when the login named no target", async () => {
  const platform = fakePlatform();
  platform.frames.lti_storage_frame = fakePlatform();
  const win = fakeWindow({parent: platform});
  const reading = api.getState(win, {target: null, origin: PLATFORM, key: "state_s", timeout: 1000,
                                     capabilitiesTimeout: 1000});
  const capabilities = platform.sent[0].message;
  assert.equal(capabilities.subject, "lti.capabilities");
  win.dispatch({origin: PLATFORM, data: {subject: "lti.capabilities.response", message_id: capabilities.message_id,
    supported_messages: [{subject: "lti.put_data", frame: "lti_storage_frame"},
                         {subject: "lti.get_data", frame: "lti_storage_frame"}]}});
  await new Promise((resolve) => setImmediate(resolve));
  const get = platform.frames.lti_storage_frame.sent[0];
  assert.equal(get.message.subject, "lti.get_data");
  assert.equal(get.targetOrigin, PLATFORM);
  win.dispatch({origin: PLATFORM, data: {subject: "lti.get_data.response", message_id: get.message.message_id,
                                         key: "state_s", value: "s"}});
  assert.equal(await reading, "s");
});

test("a platform that never answers lti.capabilities times out to the next fallback", async () => {
  const platform = fakePlatform();
  const win = fakeWindow({parent: platform});
  await assert.rejects(api.getState(win, {target: null, origin: PLATFORM, key: "k", timeout: 1000,
                                          capabilitiesTimeout: 20}), /timeout/);
});

test("launchStep: storage when the value matches, else the cookie, else a new window inside a frame", () => {
  assert.equal(api.launchStep("s1", {expected: "s1", cookieBound: false}, true), "platform_storage");
  assert.equal(api.launchStep("other", {expected: "s1", cookieBound: false}, true), "new_window");
  assert.equal(api.launchStep(null, {expected: "s1", cookieBound: true}, true), "cookie");
  assert.equal(api.launchStep(null, {expected: "s1", cookieBound: false}, false), "cookie");
  assert.equal(api.launchStep("", {expected: "", cookieBound: false}, true), "new_window");
});
