// The support console: plain DOM, every text set with textContent (never as HTML).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let me = null;
  let current = null;
  let listing = "queue";
  let known = new Set();
  let socket = null;

  const el = ConsoleKit.el;

  async function api(method, path, body) {
    const r = await ConsoleKit.api(method, path, body);
    if (r.status === 401 && path !== "/api/signin") { showSignIn(); }
    return r;
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }

  function when(at) { return new Date(at * 1000).toLocaleString(); }

  function showSignIn() {
    $("app").hidden = true;
    $("signout").hidden = true;
    $("nav-insights").hidden = true;
    $("nav-review").hidden = true;
    $("signin").hidden = false;
    $("who").textContent = "";
    if (socket) { socket.close(); socket = null; }
  }

  async function start() {
    const r = await api("GET", "/api/me");
    if (!r.ok) { showSignIn(); return; }
    me = r.data; ConsoleKit.setCsrf(me.csrf);
    $("signin").hidden = true;
    $("app").hidden = false;
    $("signout").hidden = false;
    $("who").textContent = me.name + " (" + me.role + ")";
    $("nav-insights").hidden = !(me.permissions || []).includes("insights");
    $("nav-review").hidden = !(me.permissions || []).includes("review");
    await loadAgents();
    await loadList();
    connect();
    linked();
  }

  // A link to one conversation (as in the team's Slack notice): /console#conversation-12.
  function linked() {
    const m = /^#conversation-(\d+)$/.exec(location.hash);
    if (m) open(Number(m[1]));
  }
  window.addEventListener("hashchange", () => { if (me) linked(); });

  async function loadAgents() {
    const r = await api("GET", "/api/agents");
    const sel = $("assign-to");
    sel.replaceChildren();
    for (const a of (r.data.agents || [])) sel.appendChild(el("option", "", a.name));
  }

  function searchQuery() {
    const p = new URLSearchParams();
    if ($("q").value) p.set("q", $("q").value);
    if ($("channel").value) p.set("channel", $("channel").value);
    if ($("intent").value) p.set("intent", $("intent").value);
    if ($("since").value) p.set("since", $("since").value);
    if (![...p.keys()].length) p.set("since", "0");
    return p.toString();
  }

  async function loadList() {
    const path = listing === "queue" ? "/api/conversations" : "/api/conversations?" + searchQuery();
    const r = await api("GET", path);
    if (!r.ok) return;
    const list = r.data.conversations;
    $("list-title").textContent = listing === "queue" ? "Waiting (" + list.length + ")" : "Found (" + list.length + ")";
    $("empty").hidden = list.length > 0 || listing !== "queue";
    const ul = $("queue");
    ul.replaceChildren();
    const fresh = [];
    for (const c of list) {
      const li = el("li", c.id === current ? "current" : "");
      li.dataset.id = c.id;
      li.dataset.key = c.key;
      li.appendChild(el("span", "name", c.customer.name || c.customer.id));
      const meta = el("span", "meta");
      meta.appendChild(el("span", "badge " + c.state, c.state === "agent" ? "with " + c.holder : c.state));
      meta.appendChild(document.createTextNode(" " + c.channel + " · " + (c.intent || "?")));
      if (c.waited_s !== null) {
        const label = c.state === "waiting" ? " · waiting " : " · asked ";
        meta.appendChild(el("span", "waited", label + ago(c.waited_s) + (c.state === "waiting" ? "" : " ago")));
      }
      li.appendChild(meta);
      li.addEventListener("click", () => open(c.id));
      ul.appendChild(li);
      if (listing === "queue" && c.state === "waiting" && !known.has(c.id)) fresh.push(c);
    }
    if (listing === "queue") {
      if (known.size || fresh.length) notify(fresh);
      known = new Set(list.map((c) => c.id));
    }
  }

  function notify(fresh) {
    if (!fresh.length || document.hasFocus()) return;
    try {
      const ctx = new AudioContext();
      const osc = ctx.createOscillator();
      osc.frequency.value = 880; osc.connect(ctx.destination); osc.start(); osc.stop(ctx.currentTime + 0.15);
    } catch (e) { /* no sound allowed yet */ }
    if (window.Notification && Notification.permission === "granted") {
      new Notification("A customer is waiting", { body: fresh[0].customer.name || fresh[0].channel });
    }
  }

  async function open(id) {
    if (id !== current) $("send-template").hidden = true;
    current = id;
    const r = await api("GET", "/api/conversations/" + id);
    if (!r.ok) return;
    const { conversation: c, messages, transitions, notes } = r.data;
    for (const li of $("queue").children) li.classList.toggle("current", Number(li.dataset.id) === id);
    $("pick").hidden = true; $("thread").hidden = false; $("context").hidden = false;
    $("title").textContent = (c.customer.name || c.customer.id) + " · " + c.channel;
    const ol = $("transcript");
    ol.replaceChildren();
    for (const m of messages) {
      const who = m.direction === "in" ? "in" : m.author;
      const li = el("li", "msg " + who + (m.status === "failed" ? " failed" : ""), m.text);
      let label = m.direction === "in" ? "customer" : (m.author === "agent" ? m.agent : "bot");
      label += " · " + when(m.at);
      if (m.status === "failed") label += " · NOT DELIVERED: " + m.error;
      li.appendChild(el("small", "", label));
      ol.appendChild(li);
    }
    ol.lastElementChild && ol.lastElementChild.scrollIntoView({ block: "end" });
    const card = $("card");
    card.replaceChildren();
    const row = (k, v) => { card.appendChild(el("dt", "", k)); card.appendChild(el("dd", "", v)); };
    row("Customer", (c.customer.name || "") + " (" + c.customer.id + ")");
    row("Channel", c.channel);
    row("Intent", (c.intent || "?") + (c.confidence !== null ? " (" + Math.round(c.confidence * 100) + "%)" : ""));
    row("Queue", c.queue || "");
    row("State", c.state === "agent" ? "with " + c.holder : c.state);
    if (c.waited_s !== null) row("Waiting", ago(c.waited_s));
    for (const [k, v] of Object.entries(c.slots || {})) row("· " + k, typeof v === "string" ? v : JSON.stringify(v));
    for (const f of c.failed_actions || []) row("Failed", f.action + " in " + f.flow + " at " + when(f.at) + ": " + f.error);
    const hist = $("history");
    hist.replaceChildren();
    for (const t of transitions) {
      hist.appendChild(el("li", "", when(t.at) + ": " + t.from + " → " + t.to + " by " + t.by + (t.reason ? " (" + t.reason + ")" : "")));
    }
    const nl = $("notes");
    nl.replaceChildren();
    for (const n of notes) nl.appendChild(el("li", "", n.agent + ": " + n.text));
    const withPeople = c.state === "waiting" || c.state === "agent";
    $("claim").disabled = !withPeople || c.holder === me.name;
    $("handback").disabled = !withPeople;
    $("resolve").disabled = !withPeople;
    $("reply").querySelector("button").disabled = !withPeople;
  }

  async function act(path, body, errorBox) {
    $(errorBox).textContent = "";
    const r = await api("POST", path, body);
    if (!r.ok) $(errorBox).textContent = r.data.error || ("error " + r.status);
    if (current !== null) await open(current);
    await loadList();
    return r;
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(proto + location.host + "/console/ws");
    let pinger = null;
    socket.onopen = () => {
      $("live").textContent = "live"; $("live").className = "status online";
      pinger = setInterval(() => socket && socket.readyState === 1 && socket.send("ping"), 30000);
    };
    socket.onmessage = async (ev) => {
      if (ev.data === "pong") return;
      let news;
      try { news = JSON.parse(ev.data); } catch (e) { return; }
      await loadList();
      if (current !== null && news.conversation === current) await open(current);
    };
    socket.onclose = () => {
      clearInterval(pinger);
      $("live").textContent = "offline"; $("live").className = "status";
      if (me && !$("app").hidden) setTimeout(connect, 2000);
    };
  }

  $("signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("signin-error").textContent = "";
    const r = await api("POST", "/api/signin", { name: $("name").value, password: $("password").value });
    if (!r.ok) { $("signin-error").textContent = r.data.error; return; }
    $("password").value = "";
    if (window.Notification && Notification.permission === "default") Notification.requestPermission();
    await start();
  });
  $("signout").addEventListener("click", async () => {
    await api("POST", "/api/signout");
    me = null; showSignIn();
  });
  $("reply").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("reply-text").value;
    if (!text.trim() || current === null) return;
    const r = await act("/api/conversations/" + current + "/reply", { text }, "reply-error");
    if (r.ok) $("reply-text").value = "";
    // Past the channel's reply window (WhatsApp: 24 h) only the approved template may go.
    $("send-template").hidden = !(r.data && r.data.template);
  });
  $("send-template").addEventListener("click", async () => {
    const r = await act("/api/conversations/" + current + "/template", undefined, "reply-error");
    if (r.ok) $("send-template").hidden = true;
  });
  $("reply-text").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("reply").requestSubmit(); }
  });
  $("note").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("note-text").value;
    if (!text.trim() || current === null) return;
    const r = await act("/api/conversations/" + current + "/notes", { text }, "action-error");
    if (r.ok) $("note-text").value = "";
  });
  $("claim").addEventListener("click", () => act("/api/conversations/" + current + "/claim", undefined, "action-error"));
  $("assign").addEventListener("click", () => act("/api/conversations/" + current + "/assign", { agent: $("assign-to").value }, "action-error"));
  $("handback").addEventListener("click", () => act("/api/conversations/" + current + "/handback", undefined, "action-error"));
  $("resolve").addEventListener("click", () => act("/api/conversations/" + current + "/resolve", undefined, "action-error"));
  $("search").addEventListener("submit", (ev) => { ev.preventDefault(); listing = "search"; loadList(); });
  $("show-queue").addEventListener("click", () => { listing = "queue"; loadList(); });
  setInterval(() => { if (me && listing === "queue") loadList(); }, 15000);
  start();
})();
