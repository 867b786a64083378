// The insights page: figures from /api/insights drawn with the vendored uPlot; every text set
// with textContent (intent names come from the customers' side).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const CHANNELS = ["webchat", "telegram", "whatsapp", "slack", "email"];
  const COLORS = ["#2f6fed", "#d9480f", "#7048e8", "#a40e26", "#1a7f37", "#8a4b00"];
  const HEIGHT = 220;
  const COUNTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6, 1e7];
  const charts = {};
  const seen = new Set(CHANNELS);

  const el = ConsoleKit.el;

  const pct = (r) => (r === null || r === undefined ? "–" : (Math.round(r * 1000) / 10) + "%");
  const secs = (s) => (s === null || s === undefined ? "–" : (Math.round(s * 100) / 100) + " s");
  const asPct = (r) => (r === null || r === undefined ? null : Math.round(r * 1000) / 10);
  const isoDay = (d) => d.toISOString().slice(0, 10);

  function nextDay(day) {
    const d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + 1);
    return isoDay(d);
  }

  function query(extra) {
    const p = new URLSearchParams(extra || {});
    p.set("since", $("since").value);
    p.set("until", nextDay($("until").value));
    if ($("channel").value) p.set("channel", $("channel").value);
    return p.toString();
  }

  // A chart whose x axis is a list of labels (periods, intents, bins): one tick per label,
  // thinned to what the width holds.
  function draw(id, labels, series, opts) {
    const node = $(id);
    if (charts[id]) charts[id].destroy();
    node.replaceChildren();
    const bars = opts.bars ? uPlot.paths.bars({ size: [0.7, 64] }) : null;
    const xs = labels.map((_, i) => i);
    const u = new uPlot({
      width: Math.max(200, node.clientWidth),
      height: HEIGHT,
      legend: { show: series.length > 1 },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: false, range: () => [-0.5, Math.max(0.5, labels.length - 0.5)] },
        y: { range: opts.range || ((u, min, max) => [0, Math.max(1, max * 1.1)]) },
      },
      axes: [
        {
          splits: (u) => {
            const fit = Math.max(1, Math.floor(u.bbox.width / devicePixelRatio / (opts.tick || 80)));
            const step = Math.ceil(labels.length / fit);
            return xs.filter((i) => i % step === 0);
          },
          values: (u, splits) => splits.map((i) => labels[i] ?? ""),
          rotate: opts.rotate || 0,
          size: opts.rotate ? 90 : 40,
        },
        {
          values: (u, splits) => splits.map((v) => v + (opts.unit || "")),
          size: 56,
          incrs: opts.unit ? undefined : COUNTS,
        },
      ],
      series: [
        { label: opts.xLabel || "", value: (u, i) => (i === null ? "–" : labels[i]) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          fill: bars ? COLORS[i % COLORS.length] + "cc" : undefined,
          paths: bars || undefined,
          points: { show: !bars && labels.length < 40 },
          value: (u, v) => (v === null || v === undefined ? "–" : v + (opts.unit || "")),
        })),
      ],
    }, [xs, ...series.map((s) => s.values)], node);
    node.chart = u;
    node.labels = labels;
    charts[id] = u;
  }

  function table(id, head, rows) {
    const t = $(id);
    const tr = el("tr");
    for (const h of head) tr.appendChild(el("th", "", h));
    t.tHead.replaceChildren(tr);
    const body = t.tBodies[0];
    body.replaceChildren();
    for (const row of rows) {
      const r = el("tr");
      for (const cell of row) r.appendChild(el("td", "", cell));
      body.appendChild(r);
    }
  }

  const FIGURES = ["Turns", "Conversations", "Contained", "Fallback", "Clarified", "Handed off", "Satisfaction", "p50", "p95"];
  const figures = (s) => [s.turns, s.conversations, pct(s.containment), pct(s.fallback_rate),
    pct(s.clarification_rate), pct(s.handoff_rate), pct(s.satisfaction), secs(s.latency_p50),
    secs(s.latency_p95)];

  function show(data) {
    const t = data.total;
    $("k-turns").textContent = t.turns;
    $("k-conversations").textContent = t.conversations;
    $("k-containment").textContent = pct(t.containment);
    $("k-fallback").textContent = pct(t.fallback_rate);
    $("k-clarification").textContent = pct(t.clarification_rate);
    $("k-handoff").textContent = pct(t.handoff_rate);
    $("k-satisfaction").textContent = pct(t.satisfaction);
    $("k-feedback").textContent = t.feedback.up + " helped · " + t.feedback.down + " did not";
    $("k-latency").textContent = t.latency_p50 === null ? "–"
      : secs(t.latency_p50).replace(" s", "") + " / " + secs(t.latency_p95);
    for (const node of document.querySelectorAll(".per")) node.textContent = data.period;

    const periods = data.periods.map((p) => p.period);
    const per = (key, f) => data.periods.map((p) => f(p[key]));
    draw("chart-rates", periods, [
      { label: "Contained", values: per("containment", asPct) },
      { label: "Fallback", values: per("fallback_rate", asPct) },
      { label: "Clarified", values: per("clarification_rate", asPct) },
      { label: "Handed off", values: per("handoff_rate", asPct) },
      { label: "Satisfaction", values: per("satisfaction", asPct) },
    ], { unit: "%", range: () => [0, 100], xLabel: data.period });
    draw("chart-volume", periods, [{ label: "Turns", values: per("turns", (v) => v) }], { bars: true });
    draw("chart-latency", periods, [
      { label: "p50", values: per("latency_p50", (v) => v) },
      { label: "p95", values: per("latency_p95", (v) => v) },
    ], { unit: " s", range: (u, min, max) => [0, Math.max(0.1, (max || 0) * 1.1)], xLabel: data.period });
    const intents = Object.entries(t.intents);
    draw("chart-intents", intents.map(([k]) => k), [{ label: "Turns", values: intents.map(([, v]) => v) }],
      { bars: true, rotate: -40, tick: 24 });
    const bins = t.confidence.map((_, i) => (i / t.confidence.length).toFixed(1) + "–" + ((i + 1) / t.confidence.length).toFixed(1));
    draw("chart-confidence", bins, [{ label: "Turns", values: t.confidence }], { bars: true, tick: 56 });
    const reasons = Object.entries(t.handoff_reasons);
    draw("chart-reasons", reasons.map(([k]) => k), [{ label: "Handoffs", values: reasons.map(([, v]) => v) }],
      { bars: true, tick: 60 });

    table("by-channel", ["Channel", ...FIGURES], data.channels.map((c) => [c.channel, ...figures(c)]));
    table("by-row", [data.period === "week" ? "Week of" : "Day", "Channel", ...FIGURES],
      data.rows.map((r) => [r.period, r.channel, ...figures(r)]));
    for (const c of data.channels) seen.add(c.channel);
    fillChannels();
  }

  function fillChannels() {
    const sel = $("channel");
    const chosen = sel.value;
    sel.replaceChildren(el("option", "", "all channels"));
    sel.firstChild.value = "";
    for (const c of [...seen].sort()) sel.appendChild(el("option", "", c));
    sel.value = chosen;
  }

  async function load() {
    $("error").textContent = "";
    for (const fmt of ["csv", "jsonl"]) $("export-" + fmt).href = "/api/insights/export?" + query({ format: fmt });
    const params = query({ period: $("period").value });
    history.replaceState(null, "", "?" + params);
    const resp = await fetch("/api/insights?" + params, { credentials: "same-origin" });
    if (resp.status === 401) { location.href = "/console"; return; }
    let data = {};
    try { data = await resp.json(); } catch (e) { data = { error: resp.statusText }; }
    if (!resp.ok) { $("error").textContent = data.error || ("error " + resp.status); return; }
    show(data);
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  }

  async function start() {
    const me = await fetch("/api/me", { credentials: "same-origin" });
    if (!me.ok) { location.href = "/console"; return; }
    const who = await me.json();
    $("who").textContent = who.name + " (" + who.role + ")";
    // A link may carry the filters (the page keeps them in its address).
    const p = new URLSearchParams(location.search);
    const today = isoDay(new Date());
    const weekAgo = isoDay(new Date(Date.now() - 6 * 86400000));
    $("since").value = (p.get("since") || weekAgo).slice(0, 10);
    const until = p.get("until");
    $("until").value = until ? isoDay(new Date(Date.parse(until.slice(0, 10) + "T00:00:00Z") - 86400000)) : today;
    if (p.get("period") === "week") $("period").value = "week";
    if (p.get("channel")) seen.add(p.get("channel"));
    fillChannels();
    $("channel").value = p.get("channel") || "";
    await load();
  }

  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  for (const id of ["period", "channel"]) $(id).addEventListener("change", () => load());
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const [id, u] of Object.entries(charts)) u.setSize({ width: Math.max(200, $(id).clientWidth), height: HEIGHT });
    }, 100);
  });
  start();
})();
