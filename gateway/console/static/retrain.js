// The console's retrain button (admins): starts a candidate's training, follows its progress,
// then shows the gate's verdict. Plain DOM, every text set with textContent.
"use strict";
(function () {
  const POLL_MS = 1000;
  let timer = null;
  let panel = null;

  function el(tag, id, text) {
    const node = document.createElement(tag);
    if (id) node.id = id;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const call = (method, path) => ConsoleKit.api(method, path);

  function build() {
    const box = el("span", "retrain");
    box.style.display = "inline-flex";
    box.style.alignItems = "center";
    box.style.gap = "8px";
    box.style.position = "relative";
    const start = el("button", "retrain-start", "Retrain model");
    start.type = "button";
    start.addEventListener("click", press);
    const state = el("span", "retrain-state");
    state.className = "status";
    state.setAttribute("role", "status");
    const bar = el("progress", "retrain-progress");
    bar.max = 100;
    bar.hidden = true;
    const reasons = el("ul", "retrain-reasons");
    Object.assign(reasons.style, {
      position: "absolute", top: "100%", right: "0", zIndex: "10", margin: "6px 0 0",
      padding: "8px 8px 8px 24px", background: "#fff", border: "1px solid #e3e7ee",
      borderRadius: "8px", minWidth: "320px", maxWidth: "520px", fontSize: "13px",
    });
    reasons.hidden = true;
    box.append(start, bar, state, reasons);
    const who = document.getElementById("who");
    who.parentNode.insertBefore(box, who);
    return box;
  }

  function percent(a) { return (100 * a).toFixed(2) + "%"; }

  function show(s) {
    const state = document.getElementById("retrain-state");
    const bar = document.getElementById("retrain-progress");
    const list = document.getElementById("retrain-reasons");
    const running = s.state === "running";
    document.getElementById("retrain-start").disabled = running;
    bar.hidden = !running || s.percent === null;
    if (s.percent !== null) bar.value = s.percent;
    state.dataset.state = s.state;
    if (running) {
      const pct = s.percent === null ? "" : " " + s.percent + "%";
      state.textContent = "Training a candidate (started by " + s.by + "): " + s.stage + pct;
    } else if (s.state === "deployed") {
      const live = s.live_accuracy === null ? "none" : percent(s.live_accuracy);
      state.textContent = "Deployed: held-out accuracy " + percent(s.candidate_accuracy) +
        " (live model was " + live + "), in " + s.seconds + " s";
    } else if (s.state === "refused") {
      state.textContent = "Refused: the live model stays";
    } else if (s.state === "failed") {
      state.textContent = "Failed: the live model stays";
    } else {
      state.textContent = "";
    }
    list.replaceChildren();
    for (const r of (running ? [] : s.reasons || [])) list.appendChild(el("li", "", r));
    list.hidden = list.childElementCount === 0;
  }

  async function poll() {
    clearTimeout(timer);
    const r = await call("GET", "/api/retrain");
    if (r.status !== 200) { panel.hidden = true; return; }
    panel.hidden = false;
    show(r.data);
    if (r.data.state === "running") timer = setTimeout(poll, POLL_MS);
  }

  async function press() {
    const r = await call("POST", "/api/retrain");
    if (r.status === 409) {
      show(r.data.status);
      document.getElementById("retrain-state").textContent = r.data.error;
      timer = setTimeout(poll, POLL_MS);
    } else if (r.status === 202) {
      show(r.data);
      timer = setTimeout(poll, POLL_MS);
    } else {
      document.getElementById("retrain-state").textContent = r.data.error || "refused";
    }
  }

  // The console signs in on its own page: offer the button once its app is shown, to admins.
  async function signedIn() {
    const me = await call("GET", "/api/me");
    if (me.status !== 200) return;
    ConsoleKit.setCsrf(me.data.csrf);
    if (!panel) panel = build();
    await poll();
  }

  function watch() {
    const app = document.getElementById("app");
    const seen = () => {
      if (!app.hidden) { signedIn(); } else if (panel) { panel.hidden = true; clearTimeout(timer); }
    };
    new MutationObserver(seen).observe(app, { attributes: true, attributeFilter: ["hidden"] });
    seen();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", watch);
  } else {
    watch();
  }
})();
