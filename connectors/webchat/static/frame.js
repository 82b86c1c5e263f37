/* Corridor web chat panel: runs in Corridor's iframe. Messages go up by POST (each with a
 * client id, retried with the same id); replies, typing and read receipts come down by
 * server-sent events from `corridor live`, resumed from the last event id after a drop,
 * a sleeping phone or a server restart. Everything from the network is shown as text. */
(function () {
  "use strict";
  var body = document.body;
  var api = body.getAttribute("data-api");
  var origins = (body.getAttribute("data-origins") || "").split(" ");
  var $ = function (id) { return document.getElementById(id); };
  var log = $("log"), form = $("compose"), text = $("text"), notice = $("notice"), prechat = $("prechat");
  var parentOrigin = null, token = null, info = null, stream = null, streamInfo = null;
  var lastId = 0, shown = {}, unread = 0, panelOpen = false, page = "";
  var lastTyping = 0, reconnectTimer = null, backoff = 1000, lastRead = 0;

  function tell(type, data, extra) {
    if (!parentOrigin) return;
    var m = { corridor: 1, type: type, data: data || {} };
    for (var k in extra || {}) m[k] = extra[k];
    window.parent.postMessage(m, parentOrigin);
  }

  function request(path, data) {
    data = data || {};
    data.visitor_token = token;
    return fetch(api + "/" + path, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(data), credentials: "omit", cache: "no-store"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) {
          var error = new Error((json.error && json.error.message) || ("HTTP " + response.status));
          error.status = response.status;
          error.field = json.error && json.error.field;
          throw error;
        }
        return json;
      });
    });
  }

  function showError(message) { $("error").textContent = message || ""; }

  function time(iso) {
    try {
      return new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
    } catch (e) { return ""; }
  }

  function addMessage(m) {
    var key = m.interaction_id ? "i" + m.interaction_id : "c" + m.client_id;
    var existing = shown[key] || (m.client_id && shown["c" + m.client_id]);
    if (existing) {
      if (m.interaction_id) { shown["i" + m.interaction_id] = existing; existing.classList.remove("pending", "failed"); }
      return existing;
    }
    var li = document.createElement("li");
    li.className = "msg " + (m.direction === "outbound" ? "them" : "me");
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = m.direction === "outbound" ? (m.author || "Support") : "You";
    var p = document.createElement("p");
    p.className = "text";
    p.textContent = m.text; // text only: nothing a visitor or agent writes is markup here
    var t = document.createElement("time");
    t.textContent = m.at ? time(m.at) : "";
    if (m.at) t.setAttribute("datetime", m.at);
    if (m.channel && m.channel !== "chat") {
      var via = document.createElement("span");
      via.className = "via";
      via.textContent = "by " + m.channel;
      t.appendChild(document.createTextNode(" "));
      t.appendChild(via);
    }
    li.appendChild(who); li.appendChild(p); li.appendChild(t);
    log.appendChild(li);
    if (m.interaction_id) shown["i" + m.interaction_id] = li;
    if (m.client_id) shown["c" + m.client_id] = li;
    log.scrollTop = log.scrollHeight;
    return li;
  }

  function markRead() {
    if (!panelOpen || document.visibilityState !== "visible") return;
    unread = 0;
    tell("unread", { count: 0 });
    var newest = 0;
    for (var k in shown) {
      if (k.charAt(0) === "i" && shown[k].classList.contains("them")) newest = Math.max(newest, +k.slice(1));
    }
    if (newest > lastRead) { lastRead = newest; request("read", { interaction_id: newest }).catch(function () {}); }
  }

  function onEvent(event) {
    var e;
    try { e = JSON.parse(event.data); } catch (x) { return; }
    if (event.lastEventId) lastId = Math.max(lastId, +event.lastEventId);
    if (e.kind === "live.reset") { connect(true); return; }
    if (e.kind === "chat.message") {
      var isNew = !shown["i" + e.data.interaction_id];
      addMessage(e.data);
      $("typing").textContent = "";
      if (isNew && e.data.direction === "outbound") {
        if (panelOpen && document.visibilityState === "visible") markRead();
        else { unread += 1; tell("unread", { count: unread }); }
      }
    } else if (e.kind === "chat.read") {
      var mine = log.querySelectorAll(".me");
      var old = log.querySelector(".seen");
      if (old) old.parentNode.removeChild(old);
      if (mine.length) {
        var seen = document.createElement("span");
        seen.className = "seen";
        seen.textContent = " · Seen";
        mine[mine.length - 1].querySelector("time").appendChild(seen);
      }
    } else if (e.kind === "chat.typing") {
      $("typing").textContent = (e.data.who || "Support") + " is typing…";
      setTimeout(function () { $("typing").textContent = ""; }, 4000);
    }
  }

  function openStream() {
    if (stream) stream.close();
    var url = streamInfo.url + "?token=" + encodeURIComponent(streamInfo.token) + "&last_event_id=" + lastId;
    stream = new EventSource(url);
    stream.onmessage = onEvent;
    stream.onopen = function () { backoff = 1000; };
    stream.onerror = function () {
      // EventSource retries a dropped connection by itself (with Last-Event-ID); a refused
      // one (an expired token, the server restarting) it gives up on: start again here.
      if (stream && stream.readyState === EventSource.CLOSED) schedule();
    };
  }

  function schedule() {
    if (reconnectTimer) return;
    reconnectTimer = setTimeout(function () { reconnectTimer = null; connect(false); }, backoff);
    backoff = Math.min(backoff * 2, 30000);
  }

  function applySession(s) {
    token = s.visitor_token;
    tell("token", { token: token });
    info = s;
    streamInfo = s.stream;
    if (!lastId) lastId = s.stream.position;
    s.messages.forEach(addMessage);
  }

  // A fresh session answer: new stream token, the history (merged, never repeated).
  function connect(reset) {
    return request("session", { page: page }).then(function (s) {
      if (reset) lastId = s.stream.position;
      applySession(s);
      openStream();
    }).catch(function () { schedule(); });
  }

  function setNotice() {
    var s = info.site;
    if (info.open) {
      notice.hidden = !s.greeting;
      notice.textContent = s.greeting;
      return;
    }
    var back = "";
    if (info.opens_at) {
      back = " We're back " + new Intl.DateTimeFormat(undefined, {
        weekday: "long", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
      }).format(new Date(info.opens_at)) + ".";
    }
    notice.hidden = false;
    notice.textContent = s.offline_message + back;
  }

  function needsPrechat() {
    var s = info.site, id = info.identity;
    if (id.verified || log.children.length) return false;
    if (!info.open && !id.email && !id.phone) return true; // away: ask how to answer
    return ["name", "email", "phone"].some(function (f) { return s.prechat[f] === "required" && !id[f]; }) ||
      (["name", "email", "phone"].some(function (f) { return s.prechat[f] !== "off"; }) && !id.name && !id.email && !id.phone);
  }

  function showPrechat() {
    var s = info.site;
    ["name", "email", "phone"].forEach(function (f) {
      var mode = s.prechat[f];
      if (!info.open && (f === "email" || f === "phone") && mode === "off") mode = "optional";
      $("f-" + f).hidden = mode === "off";
      prechat.elements[f].required = mode === "required";
    });
    if (!info.open) $("prechat-intro").textContent = "Leave your email or phone and we'll answer there.";
    prechat.hidden = !needsPrechat();
    form.hidden = !prechat.hidden;
  }

  function identify(data) {
    return request("identify", data).then(function (r) {
      info.identity = r.identity;
      token = r.visitor_token; // the identity travels signed in the token
      tell("token", { token: token });
      prechat.hidden = true; form.hidden = false;
      return r.identity;
    });
  }

  prechat.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = { name: prechat.elements.name.value, email: prechat.elements.email.value, phone: prechat.elements.phone.value };
    if (!info.open && !data.email && !data.phone) {
      $("prechat-error").textContent = "Please give an email or a phone number so we can answer.";
      return;
    }
    identify(data).then(function () { text.focus(); }, function (e) { $("prechat-error").textContent = e.message; });
  });

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "m" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function sendMessage(message, li, attempt) {
    request("messages", message).then(function () {
      li.classList.remove("pending");
    }, function (e) {
      if (e.status && e.status < 500 && e.status !== 429) {
        li.classList.add("failed"); showError(e.message); return;
      }
      // The network or the server: try again with the same client id (never a duplicate).
      if (attempt < 6) setTimeout(function () { sendMessage(message, li, attempt + 1); }, 1000 * Math.pow(2, attempt));
      else { li.classList.add("failed"); showError("Not sent; check your connection."); }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var value = text.value.trim();
    if (!value) return;
    showError("");
    var message = { client_id: uuid(), text: value, page: page };
    var li = addMessage({ client_id: message.client_id, direction: "inbound", text: value, at: new Date().toISOString() });
    li.classList.add("pending");
    text.value = "";
    sendMessage(message, li, 0);
  });

  text.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  text.addEventListener("input", function () {
    var now = Date.now();
    if (now - lastTyping > 3000) { lastTyping = now; request("typing", {}).catch(function () {}); }
  });
  $("close").addEventListener("click", function () { tell("close"); });
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") tell("close"); });
  $("transcript").addEventListener("click", function () {
    request("transcript", {}).then(function (r) { showError(""); notice.hidden = false; notice.textContent = "We've emailed this chat to " + r.to + "."; },
      function (e) { showError(e.message); });
  });

  function revive() {
    // Mobile browsers freeze a hidden page and drop its connections without a word.
    if (!token) return;
    if (!stream || stream.readyState !== EventSource.OPEN) { backoff = 1000; connect(false); }
    request("presence", { state: "here" }).catch(function () {});
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { revive(); markRead(); }
  });
  window.addEventListener("online", revive);
  window.addEventListener("pagehide", function () {
    if (!token) return;
    var data = JSON.stringify({ visitor_token: token, state: "left" });
    navigator.sendBeacon(api + "/presence", new Blob([data], { type: "text/plain" }));
  });
  setInterval(function () {
    if (token && document.visibilityState === "visible") request("presence", { state: "here" }).catch(function () {});
  }, 30000);

  var actions = {
    identify: function (data) {
      return identify({ name: data.name || "", email: data.email || "", phone: data.phone || "", signature: data.signature || "" });
    },
    reset: function () {
      token = null; lastId = 0; shown = {}; log.textContent = "";
      return connect(true).then(function () { setNotice(); showPrechat(); return {}; });
    }
  };

  window.addEventListener("message", function (event) {
    var m = event.data || {};
    if (m.corridor !== 1 || event.source !== window.parent) return;
    if (origins.indexOf(event.origin) < 0) return; // only the site's own pages drive the panel
    if (m.type === "init") {
      parentOrigin = event.origin;
      token = m.data.token || null;
      page = m.data.page || "";
      request("session", { page: page }).then(function (s) {
        applySession(s);
        document.documentElement.style.setProperty("--accent", s.site.colour);
        document.documentElement.style.setProperty("--accent-text", s.site.text_colour);
        setNotice();
        showPrechat();
        $("transcript").hidden = !s.transcript;
        openStream();
        tell("ready", { colour: s.site.colour, text_colour: s.site.text_colour });
      }, function (e) { showError(e.message); });
    } else if (m.type === "open") {
      panelOpen = true; markRead();
      setTimeout(function () { (prechat.hidden ? text : prechat.elements[0]).focus(); }, 0);
    } else if (m.type === "close") {
      panelOpen = false;
    } else if (actions[m.type]) {
      Promise.resolve().then(function () { return actions[m.type](m.data || {}); }).then(
        function (result) { tell("result", result, { id: m.id, ok: true }); },
        function (e) { tell("result", {}, { id: m.id, ok: false, error: e.message }); });
    }
  });

  // Ask the embedding page for its visitor token (it alone keeps it, in its storage).
  // Only to the embedding origin when the browser says which (no console noise for the others).
  var embedder = (location.ancestorOrigins && location.ancestorOrigins[0]) ||
    (document.referrer && new URL(document.referrer).origin);
  (origins.indexOf(embedder) >= 0 ? [embedder] : origins).forEach(function (origin) {
    window.parent.postMessage({ corridor: 1, type: "hello" }, origin);
  });
})();
