/*
 * Platform storage (1EdTech LTI Client Side postMessages: lti.capabilities, lti.put_data, lti.get_data) for
 * the OIDC login and the launch, so a launch inside an LMS iframe works without third-party cookies.
 *
 * Login page: store the state with lti.put_data in the platform's storage frame, then go on to the platform's
 * authorization endpoint. Launch page: read the state back with lti.get_data, compare it with the launch's
 * state and, when it matches, post the launch to the tool's own completion URL; otherwise fall back to the
 * state cookie, or to opening the launch in a new window.
 *
 * Every message goes to the origin of the platform's authorization endpoint (never "*"); an answer counts only
 * when it comes from that origin, carries our message_id and the expected subject (the older
 * org.imsglobal.lti.* subjects too). A platform that does not answer in time is treated as having no storage.
 *
 * The functions are plain so they can be tested without a browser (tests/js/lti-storage.test.js).
 */
(function (root, factory) {
  "use strict";
  var api = factory();
  if (typeof module === "object" && module.exports) {
    module.exports = api;
  } else {
    root.LtiStorage = api;
    if (root.document) {
      api.start(root);
    }
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  var PREFIXES = ["lti.", "org.imsglobal.lti."];

  function newMessageId(cryptoObject) {
    var bytes = new Uint8Array(16);
    cryptoObject.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function originOf(url) {
    try {
      var origin = new URL(url).origin;
      return origin && origin !== "null" ? origin : null;
    } catch (e) {
      return null;
    }
  }

  /* The window that receives our messages: "_parent" is the embedding window (or the opener of a new window);
     any other name is a frame of the embedding window (Canvas "post_message_forwarding", Blackboard
     "lti_storage_frame"). Null when there is none. */
  function targetWindow(win, name) {
    var parent = win.parent && win.parent !== win ? win.parent : (win.opener || null);
    if (!parent) {
      return null;
    }
    if (!name || name === "_parent") {
      return parent;
    }
    try {
      return parent.frames[name] || null;
    } catch (e) {
      return null;
    }
  }

  /* The subject without its prefix ("put_data" for "lti.put_data" and "org.imsglobal.lti.put_data"). */
  function bareSubject(subject) {
    if (typeof subject !== "string") {
      return null;
    }
    for (var i = 0; i < PREFIXES.length; i++) {
      if (subject.indexOf(PREFIXES[i]) === 0) {
        return subject.slice(PREFIXES[i].length);
      }
    }
    return null;
  }

  /* Is this message event the platform's answer to our request? Origin, message_id and subject must all match. */
  function isResponse(event, expected) {
    if (!event || event.origin !== expected.origin) {
      return false;
    }
    var data = event.data;
    if (!data || typeof data !== "object") {
      return false;
    }
    if (data.message_id !== expected.messageId) {
      return false;
    }
    return bareSubject(data.subject) === bareSubject(expected.subject) + ".response";
  }

  /* From an lti.capabilities answer: the put_data and get_data subjects the platform supports, and the frame
     to send them to (its own "frame" field, else the window that answered). Null when it supports neither. */
  function storageFromCapabilities(data) {
    var supported = data && Array.isArray(data.supported_messages) ? data.supported_messages : [];
    var put = null;
    var get = null;
    supported.forEach(function (message) {
      var bare = message && bareSubject(message.subject);
      if (bare === "put_data" && !put) {
        put = message;
      } else if (bare === "get_data" && !get) {
        get = message;
      }
    });
    if (!put || !get) {
      return null;
    }
    return {
      frame: (typeof put.frame === "string" && put.frame) || (typeof get.frame === "string" && get.frame) || "_parent",
      putSubject: put.subject,
      getSubject: get.subject
    };
  }

  /* Send one request and wait for its answer. Resolves with the answer's data, rejects with an Error whose
     message is "timeout", "no_target" or the platform's error code. */
  function request(win, options) {
    return new Promise(function (resolve, reject) {
      var target = options.target;
      if (!target || !options.origin) {
        reject(new Error("no_target"));
        return;
      }
      var messageId = newMessageId(win.crypto);
      var expected = {origin: options.origin, messageId: messageId, subject: options.subject};
      var timer = null;
      function listener(event) {
        if (!isResponse(event, expected)) {
          return;
        }
        win.removeEventListener("message", listener);
        win.clearTimeout(timer);
        if (event.data.error) {
          var code = typeof event.data.error === "object" ? event.data.error.code : event.data.error;
          reject(new Error(String(code || "error")));
        } else {
          resolve(event.data);
        }
      }
      win.addEventListener("message", listener);
      timer = win.setTimeout(function () {
        win.removeEventListener("message", listener);
        reject(new Error("timeout"));
      }, options.timeout);
      var message = {subject: options.subject, message_id: messageId};
      Object.keys(options.payload || {}).forEach(function (name) { message[name] = options.payload[name]; });
      if (options.onSend) {
        options.onSend(message);
      }
      target.postMessage(message, options.origin);
    });
  }

  /* Where the platform keeps data: the named target from the login, or what lti.capabilities reports. */
  function discover(win, config) {
    if (config.target) {
      return Promise.resolve({frame: config.target, putSubject: "lti.put_data", getSubject: "lti.get_data"});
    }
    var parent = targetWindow(win, "_parent");
    if (!parent) {
      return Promise.reject(new Error("no_target"));
    }
    return request(win, {
      target: parent, origin: config.origin, subject: "lti.capabilities", timeout: config.capabilitiesTimeout
    }).then(function (data) {
      var found = storageFromCapabilities(data);
      if (!found) {
        throw new Error("unsupported");
      }
      return found;
    });
  }

  function putState(win, config) {
    return discover(win, config).then(function (storage) {
      return request(win, {
        target: targetWindow(win, storage.frame), origin: config.origin, subject: storage.putSubject,
        payload: {key: config.key, value: config.value}, timeout: config.timeout
      });
    });
  }

  function getState(win, config, onSend) {
    return discover(win, config).then(function (storage) {
      return request(win, {
        target: targetWindow(win, storage.frame), origin: config.origin, subject: storage.getSubject,
        payload: {key: config.key}, timeout: config.timeout, onSend: onSend
      });
    }).then(function (data) {
      return typeof data.value === "string" ? data.value : null;
    });
  }

  /* The launch page's decision, apart from the browser: which way to finish the launch. */
  function launchStep(storedValue, config, framed) {
    if (typeof storedValue === "string" && storedValue !== "" && storedValue === config.expected) {
      return "platform_storage";
    }
    if (config.cookieBound || !framed) {
      return "cookie";  // the server checks the cookie; at top level a missing one is a clear refusal
    }
    return "new_window";
  }

  function readConfig(doc) {
    var node = doc.getElementById("lti-storage-config");
    return node ? JSON.parse(node.textContent) : null;
  }

  function runLogin(win, config) {
    var doc = win.document;
    var go = function () { win.location.replace(config.redirect); };
    if (!config.target && !targetWindow(win, "_parent")) {
      go();  // at top level: first-party cookies, nothing to store
      return Promise.resolve("top_level");
    }
    var storing = config.cookieCheck && !config.target
      ? cookieWorks(win, config.cookieCheck).then(function (works) {
          if (works) {
            throw new Error("cookie_works");  // nothing to store: the cookie binds the state
          }
          return putState(win, config);
        })
      : putState(win, config);
    return storing.then(function () {
      doc.documentElement.setAttribute("data-storage", "stored");
      go();
      return "stored";
    }, function (error) {
      doc.documentElement.setAttribute("data-storage", error.message);
      go();
      return error.message;
    });
  }

  function cookieWorks(win, url) {
    return win.fetch(url, {credentials: "include", cache: "no-store"}).then(function (response) {
      return response.ok ? response.json() : {cookie: false};
    }).then(function (body) { return body.cookie === true; }, function () { return false; });
  }

  function runLaunch(win, config) {
    var doc = win.document;
    var framed = !!targetWindow(win, "_parent") && win.top !== win;
    var form = doc.getElementById("lti-complete");
    var finish = function (value) {
      var step = launchStep(value, config, framed);
      doc.documentElement.setAttribute("data-launch-step", step);
      if (step === "new_window") {
        var section = doc.getElementById("new-window");
        section.hidden = false;
        doc.getElementById("checking").hidden = true;
        var link = doc.getElementById("new-window-link");
        if (link) {
          link.focus();
        }
        return step;
      }
      form.elements.proof.value = step;
      form.elements.storage_value.value = step === "platform_storage" ? value : "";
      form.submit();
      return step;
    };
    if (!config.target && !framed) {
      return Promise.resolve(finish(null));
    }
    return getState(win, config, function (message) {
      win.LtiStorage.pending = message.message_id;  // visible to the page itself only
    }).then(finish, function () { return finish(null); });
  }

  function start(win) {
    var config = readConfig(win.document);
    if (!config) {
      return null;
    }
    return config.mode === "put" ? runLogin(win, config) : runLaunch(win, config);
  }

  return {
    originOf: originOf,
    targetWindow: targetWindow,
    bareSubject: bareSubject,
    isResponse: isResponse,
    storageFromCapabilities: storageFromCapabilities,
    request: request,
    launchStep: launchStep,
    putState: putState,
    getState: getState,
    start: start
  };
});
