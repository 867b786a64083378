// The web chat client: one WebSocket, JSON frames in and out, reconnects with back-off and keeps
// the conversation across reloads (the session token the server signed lives in localStorage;
// the server sends the conversation so far with its hello, numbered, and after a reconnect only
// what the page has not seen). Every message the visitor sends has an id and shows "sending…"
// until the server acknowledges it; one typed while offline goes out on reconnection. When the
// server sends a challenge with the token, the page solves it (pow.js) before any message goes
// out. Everything shown is text (textContent), never HTML.
(function () {
  "use strict";
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const status = document.getElementById("status");
  const TYPING_FOR = 20000;
  let ws = null;
  let retry = 500;
  let ready = false;
  let session = localStorage.getItem("gateway-chat-session") || "";
  let lastSeq = 0;
  let welcomed = false;
  const outbox = new Map(); // id -> frame, in the order sent, until acknowledged
  const shown = new Set(); // ids of the visitor's messages on the page
  let typing = null;
  let typingTimer = null;

  function newId() {
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
  }

  function reveal() {
    log.scrollTop = log.scrollHeight;
  }

  function stamp(li, at) {
    if (!at) return;
    const when = new Date(at * 1000);
    const t = document.createElement("time");
    t.className = "meta";
    t.dateTime = when.toISOString();
    t.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    li.appendChild(t);
  }

  function add(kind, text, at) {
    const li = document.createElement("li");
    li.className = "msg " + kind;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    li.appendChild(body);
    stamp(li, at);
    // The typing dots stay the last line while they are shown.
    log.insertBefore(li, typing && typing.parentNode === log ? typing : null);
    reveal();
    return li;
  }

  function showUser(text, id, at, pending) {
    const li = add("user", text, at);
    if (id) {
      li.dataset.id = id;
      shown.add(id);
    }
    if (pending) {
      li.classList.add("pending");
      const mark = document.createElement("span");
      mark.className = "meta mark";
      mark.textContent = "sending…";
      li.appendChild(mark);
    }
    return li;
  }

  function settle(id, failed) {
    outbox.delete(id);
    const li = log.querySelector('li.msg.user[data-id="' + id + '"]');
    if (!li) return;
    li.classList.remove("pending");
    const mark = li.querySelector(".mark");
    if (failed && mark) {
      li.classList.add("failed");
      mark.textContent = "not sent";
    } else if (mark) {
      mark.remove();
    }
  }

  function showTyping(on) {
    clearTimeout(typingTimer);
    if (!on) {
      if (typing) typing.remove();
      return;
    }
    if (!typing) {
      typing = document.createElement("li");
      typing.className = "msg bot typing";
      typing.setAttribute("aria-label", "the bot is typing");
      for (let i = 0; i < 3; i++) {
        const dot = document.createElement("span");
        dot.className = "dot";
        typing.appendChild(dot);
      }
    }
    log.appendChild(typing);
    reveal();
    typingTimer = setTimeout(() => showTyping(false), TYPING_FOR);
  }

  function post(frame) {
    const id = newId();
    frame.id = id;
    outbox.set(id, frame);
    if (ready && ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
    return id;
  }

  function flush() {
    // Everything not yet acknowledged: the server drops a message it already has (same id).
    for (const frame of outbox.values()) ws.send(JSON.stringify(frame));
  }

  function challenged(socket, challenge) {
    status.textContent = "checking…";
    window.chatProofOfWork.solve(challenge.seed, challenge.bits).then((nonce) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ pow: nonce }));
    });
  }

  function showBot(frame, live) {
    if (frame.seq) {
      if (frame.seq <= lastSeq) return; // already on the page (a reconnect's catch-up)
      lastSeq = frame.seq;
    }
    const li = add("bot", frame.text || "", frame.at);
    if (frame.buttons && frame.buttons.length) {
      const row = document.createElement("div");
      row.className = "buttons";
      for (const b of frame.buttons) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.label;
        btn.dataset.payload = b.payload;
        btn.disabled = !live;
        btn.addEventListener("click", () => {
          row.querySelectorAll("button").forEach((x) => (x.disabled = true));
          const frame = { payload: b.payload, label: b.label };
          showUser(b.label, post(frame), Date.now() / 1000, true);
        });
        row.appendChild(btn);
      }
      li.insertBefore(row, li.querySelector("time"));
    }
    // After the buttons are in: the newest message and its buttons in view.
    reveal();
    return li;
  }

  function restore(history) {
    history.forEach((entry, i) => {
      if (entry.from === "user") {
        if (entry.seq <= lastSeq) return;
        lastSeq = entry.seq;
        if (!entry.id || !shown.has(entry.id)) showUser(entry.text, entry.id, entry.at, false);
      } else {
        // Only the newest message's buttons still mean something.
        showBot(entry, i === history.length - 1);
      }
    });
  }

  function keep(token) {
    session = token;
    localStorage.setItem("gateway-chat-session", session);
  }

  function online() {
    ready = true;
    status.textContent = "online";
    status.className = "status online";
    flush();
  }

  function hello(socket, frame) {
    keep(frame.session);
    if (frame.welcome && !welcomed) {
      welcomed = true;
      showBot(frame.welcome, true).classList.add("welcome");
    }
    if (frame.history) restore(frame.history);
    if (frame.challenge) challenged(socket, frame.challenge);
    else online();
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = "?after=" + lastSeq + (session ? "&session=" + encodeURIComponent(session) : "");
    const socket = new WebSocket(proto + "//" + location.host + "/chat/ws" + q);
    ws = socket;
    ready = false;
    socket.onopen = () => {
      retry = 500;
    };
    socket.onmessage = (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      if (frame.session && frame.history) {
        hello(socket, frame);
      } else if (frame.session) {
        keep(frame.session); // the challenge is solved: a token that says so
        online();
      } else if (frame.ack) {
        settle(frame.ack, false);
      } else if (frame.typing) {
        showTyping(true);
      } else if (frame.error) {
        if (frame.failed) settle(frame.failed, true);
        if (!frame.challenge) add("error", frame.error);
        // Refused for now (too many new chats): come back when the server says.
        if (frame.retry_after && !ready) retry = Math.max(retry, frame.retry_after * 1000);
      } else {
        showTyping(false);
        showBot(frame, true);
      }
    };
    socket.onclose = () => {
      ready = false;
      status.textContent = "reconnecting…";
      status.className = "status";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, Math.max(retry, 10000));
    };
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    showUser(text, post({ text: text }), Date.now() / 1000, true);
    input.value = "";
  });

  // A phone's keyboard opening shrinks the page: keep the newest message in view.
  window.addEventListener("resize", reveal);

  connect();
})();
