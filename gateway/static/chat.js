// The web chat client: one WebSocket, JSON frames in and out, reconnects with back-off and keeps
// the conversation across reloads (the session id lives in localStorage).
(function () {
  "use strict";
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const status = document.getElementById("status");
  let ws = null;
  let retry = 500;
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
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
    else outbox.push(frame);
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
    ws = new WebSocket(proto + "//" + location.host + "/chat/ws" + q);
    ws.onopen = () => {
      retry = 500;
      status.textContent = "online";
      status.className = "status online";
      while (outbox.length) ws.send(JSON.stringify(outbox.shift()));
    };
    ws.onmessage = (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      if (frame.session) {
        session = frame.session;
        localStorage.setItem("gateway-chat-session", session);
      } else if (frame.error) {
        add("error", frame.error);
      } else {
        showBot(frame);
      }
    };
    ws.onclose = () => {
      status.textContent = "reconnecting…";
      status.className = "status";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
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
