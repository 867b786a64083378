// The review inbox: plain DOM, every text set with textContent (never as HTML).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const REASON = {
    low_confidence: "low confidence", clarified: "clarified", fallback: "fallback",
    thumbs_down: "👎", handoff: "handed off",
  };
  const DONE = { right: "Marked right:", relabel: "Relabelled as", example: "New example for", ignore: "Ignored" };
  let intents = [];

  const el = ConsoleKit.el;

  const api = ConsoleKit.api;

  const pct = (x) => (x === null || x === undefined ? "—" : (100 * x).toFixed(0) + "%");

  function gate(text) {
    $("review").hidden = true;
    $("gate").hidden = false;
    $("gate-text").textContent = text;
  }

  function options(select, values, first) {
    const keep = select.value;
    select.replaceChildren();
    if (first !== null) select.appendChild(Object.assign(el("option", "", first), { value: "" }));
    for (const v of values) select.appendChild(Object.assign(el("option", "", v[1]), { value: v[0] }));
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  }

  function query() {
    const p = new URLSearchParams();
    for (const [key, id] of [["status", "f-status"], ["reason", "f-reason"], ["channel", "f-channel"],
      ["intent", "f-intent"], ["since", "f-since"], ["until", "f-until"]]) {
      if ($(id).value) p.set(key, $(id).value);
    }
    return p.toString();
  }

  function outcomeText(review) {
    const to = review.label === "ignore" ? "" : " " + review.intent;
    const example = review.label === "example" ? ": “" + review.example + "”" : "";
    return DONE[review.label] + to + example + " — " + review.by;
  }

  function card(item) {
    const li = el("li", "turn" + (item.review ? " labelled" : ""));
    li.dataset.turn = item.turn;
    const when = el("div", "when", new Date(item.at * 1000).toLocaleString() + " · " + item.channel + " · " + item.outcome);
    for (const r of item.reasons) when.appendChild(el("span", "badge reason " + r, REASON[r] || r));
    li.appendChild(when);
    li.appendChild(el("p", "said", item.text || "(no text)"));
    const guess = item.intent ? item.intent + " (" + pct(item.confidence) + ")" : "no intent";
    const others = item.ranking.filter((r) => r.intent !== item.intent)
      .map((r) => r.intent + " " + pct(r.confidence)).join(", ");
    li.appendChild(el("div", "model", "Model: " + guess + (others ? " · runners-up: " + others : "")));

    const status = el("div", "outcome", item.review ? outcomeText(item.review) : "");
    const error = el("p", "error");
    error.setAttribute("role", "alert");
    const send = async (body) => {
      error.textContent = "";
      const r = await api("POST", "/api/review/" + item.turn + "/label", body);
      if (!r.ok) {
        const list = r.data.intents ? "\nIntents: " + r.data.intents.join(", ") : "";
        error.textContent = (r.data.error || "refused") + list;
        return;
      }
      li.classList.add("labelled");
      status.textContent = outcomeText(r.data.review);
      loadScores();
    };

    const row = el("div", "do");
    const right = el("button", "right", "Right");
    right.type = "button";
    right.disabled = !item.intent;
    right.addEventListener("click", () => send({ label: "right" }));
    const pick = el("select", "pick");
    pick.setAttribute("aria-label", "The right intent");
    options(pick, intents.map((i) => [i, i]), null);
    if (item.ranking.length > 1 && intents.includes(item.ranking[1].intent)) pick.value = item.ranking[1].intent;
    const relabel = el("button", "relabel", "Relabel");
    relabel.type = "button";
    relabel.addEventListener("click", () => send({ label: "relabel", intent: pick.value }));
    const more = el("button", "quiet more", "New example…");
    more.type = "button";
    const ignore = el("button", "quiet ignore", "Ignore");
    ignore.type = "button";
    ignore.addEventListener("click", () => send({ label: "ignore" }));
    row.append(right, pick, relabel, more, ignore);
    li.appendChild(row);

    const form = el("form", "new");
    form.hidden = true;
    const words = el("input");
    words.placeholder = "A new example, in a customer's words";
    words.setAttribute("aria-label", "New example");
    words.maxLength = 1000;
    words.value = item.text;
    const add = el("button", "", "Add example");
    add.type = "submit";
    form.append(words, add);
    more.addEventListener("click", () => { form.hidden = !form.hidden; if (!form.hidden) words.focus(); });
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      send({ label: "example", intent: pick.value, text: words.value });
    });
    li.append(form, status, error);
    return li;
  }

  async function loadTurns() {
    const r = await api("GET", "/api/review?" + query());
    if (!r.ok) { $("list-error").textContent = r.data.error || "the inbox cannot be read"; return; }
    $("list-error").textContent = "";
    const items = r.data.items;
    $("count").textContent = "Turns (" + items.length + ")";
    $("none").hidden = items.length > 0;
    $("turns").replaceChildren(...items.map(card));
  }

  async function loadScores() {
    const r = await api("GET", "/api/review/precision");
    if (!r.ok) return;
    const off = r.data.offline;
    $("offline").textContent = off
      ? "Deployed release " + off.release + ": held-out accuracy " + pct(off.accuracy) + " on " + off.n + " examples."
      : "The deployed model has no held-out figures (trained without the gate): retrain to measure it.";
    const body = $("precision").tBodies[0];
    body.replaceChildren();
    for (const row of r.data.intents) {
      const tr = el("tr");
      tr.dataset.intent = row.intent;
      tr.appendChild(el("td", "", row.intent));
      const live = el("td", "num live", pct(row.live.precision));
      const held = row.offline.precision;
      if (row.live.precision !== null && held !== null && held !== undefined && row.live.precision < held - 0.1) live.className += " low";
      tr.appendChild(live);
      tr.appendChild(el("td", "num", row.live.right + row.live.wrong));
      tr.appendChild(el("td", "num", pct(held)));
      tr.appendChild(el("td", "num", pct(row.offline.recall)));
      body.appendChild(tr);
    }
  }

  async function start() {
    const me = await api("GET", "/api/me");
    if (!me.ok) { gate("Sign in first."); return; }
    ConsoleKit.setCsrf(me.data.csrf);
    $("who").textContent = me.data.name + " (" + me.data.role + ")";
    const known = await api("GET", "/api/review/intents");
    if (known.status === 403) { gate("The " + me.data.role + " role may not review turns."); return; }
    intents = known.data.intents || [];
    options($("f-intent"), intents.map((i) => [i, i]), "Any intent");
    options($("f-reason"), Object.entries(REASON), "Any reason");
    $("gate").hidden = true;
    $("review").hidden = false;
    await Promise.all([loadTurns(), loadScores()]);
  }

  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadTurns(); });
  start();
})();
