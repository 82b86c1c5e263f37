// Corridor's console: live updates, the screen pop, local times. No build step, no dependencies.
//
// The page works without this file; with it, what changes elsewhere appears
// here without a reload. One EventSource per page reads the live stream
// (hub.live.server). It is opened with a short-lived token from
// /api/live/token and the event id the page was rendered at, so nothing
// committed between rendering and connecting is missed; after a drop the
// browser reconnects with Last-Event-ID, and when the token has expired the
// page fetches a new one and carries on from the last event it saw.
(function () {
  "use strict";

  const body = document.body;
  const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  function localTimes(root) {
    root.querySelectorAll("time[datetime]:not(.ago)").forEach(function (el) {
      const when = new Date(el.getAttribute("datetime") + (/[zZ]|[+-]\d\d:\d\d$/.test(el.getAttribute("datetime")) ? "" : "Z"));
      if (!isNaN(when)) el.textContent = timeFormat.format(when);
    });
  }

  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function announce(text) {
    const region = document.getElementById("announcer");
    if (region) region.textContent = text;
  }

  // -- refreshing what changed ------------------------------------------------------------------

  const dueRefresh = new Map();

  function refresh(region) {
    if (dueRefresh.has(region)) return;
    // Several events in a burst (a reply and its delivery receipt) cost one fetch.
    dueRefresh.set(region, setTimeout(function () {
      dueRefresh.delete(region);
      fetch(region.dataset.refreshUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (answer) { return answer.ok ? answer.text() : Promise.reject(answer.status); })
        .then(function (html) {
          const fresh = new DOMParser().parseFromString(html, "text/html");
          region.dataset.refreshTarget.split(",").forEach(function (selector) {
            const old = region.querySelector(selector) || document.querySelector(selector);
            const replacement = fresh.querySelector(selector);
            if (old && replacement) {
              old.replaceWith(document.importNode(replacement, true));
            }
          });
          localTimes(region);
          body.dataset.refreshed = String(Number(body.dataset.refreshed || 0) + 1);
        })
        .catch(function () { /* the next event or a reload shows it */ });
    }, 30));
  }

  function concerns(region, event) {
    const data = event.data || {};
    if (region.hasAttribute("data-refresh-inbox")) {
      return event.kind.startsWith("interaction.") || event.kind.startsWith("conversation.");
    }
    const conversation = region.dataset.refreshConversation;
    const customer = region.dataset.refreshCustomer;
    return (conversation && String(data.conversation_id) === conversation) ||
      (customer && String(data.customer_id) === customer);
  }

  // -- the screen pop -------------------------------------------------------------------------

  function screenPop(event) {
    const pops = document.getElementById("pops");
    const id = event.data.interaction_id;
    if (!pops || pops.querySelector('[data-call="' + id + '"]')) return;
    fetch("/console/pop/" + id, { credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.text() : Promise.reject(answer.status); })
      .then(function (html) {
        const card = new DOMParser().parseFromString(html, "text/html").querySelector(".pop");
        if (!card) return;
        const node = document.importNode(card, true);
        node.querySelector(".pop-close").addEventListener("click", function () { node.remove(); });
        pops.appendChild(node);
        announce("Incoming call: " + (node.querySelector("strong") || node).textContent.trim());
      })
      .catch(function () {});
  }

  // -- presence: who else is here -------------------------------------------------------------

  const others = new Map();

  function showPresence() {
    const line = document.getElementById("presence");
    if (!line) return;
    const now = Date.now();
    const names = [];
    others.forEach(function (seen, key) {
      if (now - seen.at > 45000) { others.delete(key); return; }
      names.push(seen.name + (seen.state === "replying" ? " is replying" : " is viewing"));
    });
    line.textContent = names.length ? names.join(", ") + " too" : "";
  }

  function reportPresence(state) {
    const region = document.querySelector("[data-refresh-conversation]");
    if (!region) return;
    fetch("/api/conversations/" + region.dataset.refreshConversation + "/presence", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify({ state: state }),
    }).catch(function () {});
  }

  function presenceEvent(event) {
    const region = document.querySelector("[data-refresh-conversation]");
    const data = event.data;
    if (!region || String(data.conversation_id) !== region.dataset.refreshConversation) return;
    if (String(data.agent_id) === body.dataset.agent) return;
    others.set(data.agent_id, { name: data.agent_name, state: data.state, at: Date.now() });
    showPresence();
  }

  // -- the stream -----------------------------------------------------------------------------

  const seen = new Set();
  let lastId = Number(body.dataset.position || 0);
  let source = null;
  let retryDelay = 1000;

  function handle(message) {
    let event;
    try { event = JSON.parse(message.data); } catch (e) { return; }
    if (seen.has(event.id)) return;
    seen.add(event.id);
    if (event.id > lastId) lastId = event.id;
    if (event.kind === "live.reset") {
      document.querySelectorAll("[data-refresh-url]").forEach(refresh);
      return;
    }
    if (event.kind === "call.ringing") { screenPop(event); return; }
    if (event.kind === "presence") { presenceEvent(event); return; }
    document.querySelectorAll("[data-refresh-url]").forEach(function (region) {
      if (concerns(region, event)) refresh(region);
    });
    const data = event.data || {};
    if (event.kind === "interaction.created" && data.direction === "inbound") {
      announce("New " + (data.channel === "voice" ? "call" : data.channel + " message"));
    }
  }

  function state(on) {
    body.dataset.liveConnected = on ? "1" : "0";
    const dot = document.getElementById("live-state");
    if (dot) dot.className = "live-state " + (on ? "on" : "off");
  }

  function connect() {
    if (source) source.close();
    fetch(body.dataset.live, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : Promise.reject(answer.status); })
      .then(function (grant) {
        // A page that rendered no feed position (the reports, the audit trail)
        // starts from now: replaying the whole feed would pop up every call
        // that ever rang.
        if (!lastId) lastId = grant.position || 0;
        const url = grant.url + (grant.url.indexOf("?") < 0 ? "?" : "&") + "token=" + encodeURIComponent(grant.token) +
          "&last_event_id=" + lastId;
        source = new EventSource(url);
        source.onopen = function () { retryDelay = 1000; state(true); };
        source.onmessage = handle;
        source.onerror = function () {
          state(false);
          // CONNECTING: the browser retries by itself, with Last-Event-ID.
          // CLOSED: refused (an expired token): fetch a new one.
          if (source.readyState === EventSource.CLOSED) {
            setTimeout(connect, retryDelay);
            retryDelay = Math.min(retryDelay * 2, 30000);
          }
        };
      })
      .catch(function () {
        state(false);
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      });
  }

  function wake() {
    // A phone or laptop back from sleep: a closed stream comes back at once.
    if (!source || source.readyState === EventSource.CLOSED) connect();
  }

  // -- keyboard shortcuts (listed on ?) ---------------------------------------------------------

  // The inbox's order, kept for the conversation pages opened from it, so j / k walk it there too.
  const ORDER_KEY = "corridor.inbox.order";

  function inboxRows() {
    return Array.prototype.slice.call(document.querySelectorAll("#inbox-rows .inbox-row"));
  }

  function rememberOrder() {
    const ids = inboxRows().map(function (row) { return row.dataset.conversation; });
    if (ids.length) {
      try { sessionStorage.setItem(ORDER_KEY, JSON.stringify(ids)); } catch (e) { /* private mode: no walking */ }
    }
  }

  function moveInInbox(step) {
    const rows = inboxRows();
    if (!rows.length) return;
    const current = rows.findIndex(function (row) { return row.classList.contains("selected"); });
    const next = Math.max(0, Math.min(rows.length - 1, current < 0 ? 0 : current + step));
    rows.forEach(function (row) { row.classList.remove("selected"); });
    rows[next].classList.add("selected");
    rows[next].querySelector("a").focus();
  }

  function moveInConversation(step) {
    const region = document.querySelector("[data-refresh-conversation]");
    let ids = [];
    try { ids = JSON.parse(sessionStorage.getItem(ORDER_KEY) || "[]"); } catch (e) { ids = []; }
    const at = ids.indexOf(region.dataset.refreshConversation);
    const target = at >= 0 ? ids[at + step] : undefined;
    if (target) window.location.href = "/conversations/" + target;
    else announce(step > 0 ? "No next conversation in the inbox" : "No previous conversation in the inbox");
  }

  function press(selector) {
    const button = document.querySelector(selector);
    if (button) { button.click(); return true; }
    return false;
  }

  function focus(selector) {
    const field = document.querySelector(selector);
    if (!field) return false;
    field.focus();
    return true;
  }

  // -- snippets in the reply box ---------------------------------------------------------------

  function insertAtCursor(field, text, replaceBefore) {
    const start = field.selectionStart - (replaceBefore || 0);
    const end = field.selectionEnd;
    field.setRangeText(text, start, end, "end");
    field.dispatchEvent(new Event("input", { bubbles: true }));
    field.focus();
  }

  function snippets() {
    const pick = document.querySelector("select[data-snippets]");
    const reply = document.getElementById("reply-text");
    if (!pick || !reply) return;
    const texts = new Map();
    Array.prototype.forEach.call(pick.options, function (option) {
      if (option.value) texts.set(option.value, option.dataset.text);
    });
    pick.addEventListener("change", function () {
      const text = texts.get(pick.value);
      pick.value = "";
      if (text !== undefined) insertAtCursor(reply, text, 0);
    });
    reply.addEventListener("keydown", function (event) {
      if (event.key !== "Tab" || event.shiftKey || reply.selectionStart !== reply.selectionEnd) return;
      const typed = /(^|\s)\/([a-z0-9][a-z0-9_-]*)$/.exec(reply.value.slice(0, reply.selectionStart));
      if (!typed || !texts.has(typed[2])) return;  // Tab moves on, as everywhere
      event.preventDefault();
      insertAtCursor(reply, texts.get(typed[2]), typed[2].length + 1);
      announce("Snippet /" + typed[2] + " inserted");
    });
  }

  let pendingG = 0;

  function shortcut(event) {
    const dialog = document.getElementById("shortcuts");
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
    if (event.key === "Escape" && typing) { event.target.blur(); return; }
    if (typing || event.defaultPrevented) return;
    const key = event.key;
    const conversation = document.querySelector("[data-refresh-conversation]");
    let done = true;
    if (Date.now() - pendingG < 1500 && "ics".indexOf(key) >= 0) {
      pendingG = 0;
      window.location.href = { i: "/inbox", c: "/customers", s: "/search" }[key];
    } else if (key === "g") {
      pendingG = Date.now();
    } else if (key === "?") {
      if (dialog && !dialog.open) dialog.showModal();
    } else if (key === "/") {
      if (!focus("#q")) window.location.href = "/search";
    } else if (key === "j" || key === "k") {
      if (conversation) moveInConversation(key === "j" ? 1 : -1);
      else if (inboxRows().length) moveInInbox(key === "j" ? 1 : -1);
      else done = false;
    } else if (key === "r") {
      done = focus("#reply-text");
    } else if (key === "n") {
      done = focus("#note-text");
    } else if (key === "a") {
      done = press("#assign-me");
    } else if (key === "c") {
      done = press("#close") || press("#reopen");
    } else {
      done = false;
    }
    if (done) event.preventDefault();
  }

  // A recording still at the provider is fetched when played; when that fails
  // the player alone would just look broken, so ask the server why (it kept
  // the reason, and asks no provider for it) and say so in its place.
  function recordingFailed(event) {
    const player = event.target;
    if (!(player instanceof HTMLAudioElement) || !player.dataset.problem) return;
    const note = player.parentElement.querySelector(".media-problem");
    fetch(player.dataset.problem, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (note) note.textContent = answer.problem || "The recording could not be loaded; try again.";
      })
      .catch(function () { if (note) note.textContent = "The recording could not be loaded; try again."; })
      .finally(function () { player.hidden = true; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    // Media errors do not bubble: listen in the capture phase, which also
    // covers players added to the timeline live.
    document.addEventListener("error", recordingFailed, true);
    localTimes(document);
    rememberOrder();
    snippets();
    document.addEventListener("keydown", shortcut);
    document.querySelectorAll("[data-shortcuts]").forEach(function (button) {
      button.addEventListener("click", function () {
        const dialog = document.getElementById("shortcuts");
        if (dialog) dialog.showModal();
      });
    });
    if (body.dataset.live) {
      connect();
      // "An agent is online" for the web chat: said while a console tab is visible.
      const seen = function () {
        if (document.hidden) return;
        fetch("/console/seen", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf() } })
          .catch(function () {});
      };
      seen();
      setInterval(seen, 60000);
      document.addEventListener("visibilitychange", seen);
      document.addEventListener("visibilitychange", function () { if (!document.hidden) wake(); });
      window.addEventListener("online", wake);
    }
    if (document.querySelector("[data-refresh-conversation]")) {
      reportPresence("viewing");
      setInterval(function () { reportPresence(document.activeElement && document.activeElement.id === "reply-text" ? "replying" : "viewing"); showPresence(); }, 20000);
      const reply = document.getElementById("reply-text");
      if (reply) reply.addEventListener("focus", function () { reportPresence("replying"); });
    }
  });
})();
