// The web chat client: one WebSocket, JSON frames in and out, reconnects with back-off and keeps
// the conversation across reloads (the session token the server signed lives in localStorage).
// When the server sends a challenge with the token, the page solves it (pow.js) before any
// message goes out; messages typed meanwhile wait in the outbox.
(function () {
  "use strict";
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const status = document.getElementById("status");
  let ws = null;
  let retry = 500;
  let ready = false;
  let session = localStorage.getItem("gateway-chat-session") || "";
  const outbox = [];

  function add(kind, text) {
    const li = document.createElement("li");
    li.className = "msg " + kind;
    li.textContent = text;
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    return li;
  }

  function send(frame) {
    if (ready && ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
    else outbox.push(frame);
  }

  function flush() {
    while (outbox.length) ws.send(JSON.stringify(outbox.shift()));
  }

  function challenged(socket, challenge) {
    status.textContent = "checking…";
    window.chatProofOfWork.solve(challenge.seed, challenge.bits).then((nonce) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ pow: nonce }));
    });
  }

  function showBot(frame) {
    const li = add("bot", frame.text || "");
    if (frame.buttons && frame.buttons.length) {
      const row = document.createElement("div");
      row.className = "buttons";
      for (const b of frame.buttons) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.label;
        btn.dataset.payload = b.payload;
        btn.addEventListener("click", () => {
          row.querySelectorAll("button").forEach((x) => (x.disabled = true));
          add("user", b.label);
          send({ payload: b.payload, label: b.label });
        });
        row.appendChild(btn);
      }
      li.appendChild(row);
    }
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = session ? "?session=" + encodeURIComponent(session) : "";
    const socket = new WebSocket(proto + "//" + location.host + "/chat/ws" + q);
    ws = socket;
    ready = false;
    socket.onopen = () => {
      retry = 500;
    };
    socket.onmessage = (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      if (frame.session) {
        session = frame.session;
        localStorage.setItem("gateway-chat-session", session);
        if (frame.challenge) {
          challenged(socket, frame.challenge);
        } else {
          ready = true;
          status.textContent = "online";
          status.className = "status online";
          flush();
        }
      } else if (frame.error) {
        if (!frame.challenge) add("error", frame.error);
        // Refused for now (too many new chats): come back when the server says.
        if (frame.retry_after && !ready) retry = Math.max(retry, frame.retry_after * 1000);
      } else {
        showBot(frame);
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
    add("user", text);
    send({ text: text });
    input.value = "";
  });

  connect();
})();
