/* Corridor web chat loader: <script src=".../chat/widget.js" data-site="shop" async></script>
 * Adds a launcher and the chat panel (an iframe on Corridor's origin), keeps the
 * visitor token in this page's storage, and offers window.Corridor:
 *   Corridor.open(), Corridor.close(), Corridor.identify({email, name, phone, signature}),
 *   Corridor.reset(), Corridor.onReady(fn); the window gets a "corridor:ready" event.
 * No inline styles or scripts: styles are set through the CSSOM, which a strict CSP allows. */
(function () {
  "use strict";
  var script = document.currentScript ||
    document.querySelector('script[data-site][src*="/chat/widget.js"]');
  if (!script || (window.Corridor && window.Corridor.version)) return;
  var site = script.getAttribute("data-site") || "";
  var base = new URL(script.src, location.href).origin;
  var key = "corridor.chat." + site;
  var memory = null;
  function load() {
    try { return window.localStorage.getItem(key); } catch (e) { return memory; }
  }
  function save(value) {
    memory = value;
    try {
      if (value) window.localStorage.setItem(key, value); else window.localStorage.removeItem(key);
    } catch (e) { /* storage blocked: the chat lasts as long as the page */ }
  }

  var frame, launcher, badge, isOpen = false, ready = false, queue = [], waiting = {}, seq = 0, readyFns = [];

  function css(el, styles) { for (var k in styles) el.style.setProperty(k, styles[k]); }

  function post(message) {
    if (!ready) { queue.push(message); return; }
    frame.contentWindow.postMessage(message, base);
  }

  function call(type, data) {
    return new Promise(function (resolve, reject) {
      var id = ++seq;
      waiting[id] = { resolve: resolve, reject: reject };
      post({ corridor: 1, type: type, id: id, data: data || {} });
    });
  }

  function layout() {
    var narrow = window.innerWidth <= 480;
    css(frame, narrow
      ? { top: "0", left: "0", right: "0", bottom: "0", width: "100%", height: "100%", "border-radius": "0" }
      : { top: "auto", left: "auto", right: "16px", bottom: "88px", width: "380px",
          height: "min(600px, calc(100vh - 104px))", "border-radius": "12px" });
    css(launcher, { display: narrow && isOpen ? "none" : "flex" });
  }

  function setOpen(open) {
    isOpen = open;
    css(frame, { display: open ? "block" : "none" });
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    launcher.setAttribute("aria-label", open ? "Close chat" : "Open chat");
    layout();
    post({ corridor: 1, type: open ? "open" : "close" });
    if (open) { css(badge, { display: "none" }); frame.focus(); } else { launcher.focus(); }
  }

  function build() {
    launcher = document.createElement("button");
    launcher.type = "button";
    launcher.setAttribute("aria-label", "Open chat");
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "corridor-chat-frame");
    // A speech bubble drawn in SVG: no emoji font needed, and the host's CSS colours do not reach it.
    var ns = "http://www.w3.org/2000/svg", icon = document.createElementNS(ns, "svg"), path = document.createElementNS(ns, "path");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("width", "28");
    icon.setAttribute("height", "28");
    icon.setAttribute("aria-hidden", "true");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    icon.appendChild(path);
    launcher.appendChild(icon);
    css(launcher, {
      position: "fixed", right: "16px", bottom: "16px", width: "60px", height: "60px",
      "border-radius": "50%", border: "0", cursor: "pointer", "font-size": "26px",
      display: "flex", "align-items": "center", "justify-content": "center",
      background: "#1f4e79", color: "#fff", "box-shadow": "0 2px 12px rgba(0,0,0,.3)",
      "z-index": "2147483646", padding: "0", margin: "0"
    });
    badge = document.createElement("span");
    badge.setAttribute("aria-hidden", "true");
    css(badge, {
      position: "absolute", top: "2px", right: "2px", "min-width": "18px", height: "18px",
      "border-radius": "9px", background: "#c62828", color: "#fff", "font": "bold 12px/18px sans-serif",
      display: "none", "text-align": "center", padding: "0 4px"
    });
    path.setAttribute("fill", "#fff");
    launcher.appendChild(badge);
    launcher.addEventListener("click", function () { setOpen(!isOpen); });

    frame = document.createElement("iframe");
    frame.id = "corridor-chat-frame";
    frame.title = "Chat";
    frame.src = base + "/chat/frame?site=" + encodeURIComponent(site);
    frame.setAttribute("allow", "clipboard-write");
    css(frame, {
      position: "fixed", border: "0", display: "none", background: "#fff",
      "box-shadow": "0 4px 24px rgba(0,0,0,.25)", "z-index": "2147483647", "max-width": "100%"
    });
    document.body.appendChild(frame);
    document.body.appendChild(launcher);
    layout();
    window.addEventListener("resize", layout);
  }

  window.addEventListener("message", function (event) {
    if (!frame || event.source !== frame.contentWindow || event.origin !== base) return;
    var m = event.data || {};
    if (m.corridor !== 1) return;
    if (m.type === "hello") {
      // The panel has loaded: hand it the visitor token this page keeps.
      frame.contentWindow.postMessage({ corridor: 1, type: "init", data: { token: load(), page: location.href } }, base);
    } else if (m.type === "ready") {
      ready = true;
      if (m.data && m.data.colour) {
        css(launcher, { background: m.data.colour });
        launcher.querySelector("path").setAttribute("fill", m.data.text_colour);
      }
      while (queue.length) frame.contentWindow.postMessage(queue.shift(), base);
      readyFns.splice(0).forEach(function (fn) { try { fn(); } catch (e) { /* the host's */ } });
      window.dispatchEvent(new CustomEvent("corridor:ready", { detail: { site: site } }));
    } else if (m.type === "token") {
      save(m.data && m.data.token);
    } else if (m.type === "close") {
      setOpen(false);
    } else if (m.type === "unread") {
      var n = (m.data && m.data.count) || 0;
      badge.textContent = String(n);
      css(badge, { display: n && !isOpen ? "block" : "none" });
    } else if (m.type === "result" && waiting[m.id]) {
      var w = waiting[m.id];
      delete waiting[m.id];
      if (m.ok) w.resolve(m.data); else w.reject(new Error(m.error || "refused"));
    }
  });

  window.Corridor = {
    version: 1,
    open: function () { if (!isOpen) setOpen(true); },
    close: function () { if (isOpen) setOpen(false); },
    identify: function (identity) { return call("identify", identity); },
    reset: function () { save(null); return call("reset"); },
    onReady: function (fn) { if (ready) fn(); else readyFns.push(fn); }
  };

  if (document.body) build(); else document.addEventListener("DOMContentLoaded", build);
})();
