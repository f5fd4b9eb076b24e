// tinyfleet web UI: the script layer over the REST API. No framework, no build step, nothing from outside.
// Every page is rendered on the server (layout, forms, CSRF token); this fills it from /api/v1 and
// /ui/overview.json, keeps it live with server-sent events (/ui/stream), and draws the charts as SVG.
// Data goes into the DOM as text nodes only (never innerHTML), so device-supplied strings cannot inject markup.
"use strict";

(() => {
  const body = document.body;
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const CAN_WRITE = body.dataset.canWrite === "true";
  const ACTOR = body.dataset.actor || "ui";
  const KINDS = ["classification", "anomaly", "regression", "detection"];
  const COLORS = ["#0b57a4", "#c0392b", "#1e8449", "#8e44ad", "#b9770e", "#117a8b", "#6c3483", "#7b7d7d"];
  const SVGNS = "http://www.w3.org/2000/svg";

  // ------------------------------------------------------------------------------------------ helpers
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "hidden") el.hidden = true;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
    for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }
  const $ = (sel) => document.querySelector(sel);
  const setText = (sel, text) => { const el = $(sel); if (el) el.textContent = text; };
  const fill = (tbody, rows, empty) => {
    tbody.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 20, class: "empty" }, empty || "nothing yet"))]));
  };
  const badge = (state) => h("span", { class: `st st-${String(state).replace(/[^a-z_]/gi, "")}` }, state);
  const num = (v, d = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));

  function ago(iso) {
    if (!iso) return "never";
    const t = typeof iso === "number" ? iso : Date.parse(iso);
    const sec = Math.round((Date.now() - t) / 1000);
    if (sec < 0) return "just now";
    if (sec < 60) return `${sec} s ago`;
    if (sec < 3600) return `${Math.round(sec / 60)} min ago`;
    if (sec < 86400) return `${Math.round(sec / 3600)} h ago`;
    return new Date(t).toLocaleString();
  }
  const clock = (t) => new Date(typeof t === "number" ? t : Date.parse(t)).toLocaleTimeString();

  async function api(path, opts = {}) {
    const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...opts };
    if (init.method && init.method !== "GET") {
      init.headers["X-CSRF-Token"] = CSRF;
      if (opts.json !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(opts.json);
      }
    }
    const r = await fetch(path, init);
    if (r.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; throw new Error("log in first"); }
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) throw new Error((data && data.error && data.error.message) || (data && data.detail) || `HTTP ${r.status}`);
    return data;
  }

  // --------------------------------------------------------------------------------------- live stream
  function live(device, handlers) {
    const indicator = $("#live-state");
    let source = null;
    function open() {
      source = new EventSource(device ? `/ui/stream?device=${encodeURIComponent(device)}` : "/ui/stream");
      source.addEventListener("hello", (e) => {
        const hello = JSON.parse(e.data);
        if (indicator) { indicator.textContent = hello.live ? "live" : "no ingest here"; indicator.classList.toggle("on", hello.live); }
      });
      source.addEventListener("events", (e) => handlers.events && handlers.events(JSON.parse(e.data)));
      source.addEventListener("reload", () => handlers.reload && handlers.reload());
      source.addEventListener("bye", () => { source.close(); if (indicator) indicator.textContent = "service stopped"; });
      source.onerror = () => { if (indicator) { indicator.textContent = "reconnecting…"; indicator.classList.remove("on"); } };
    }
    open();
    return () => source && source.close();
  }

  // -------------------------------------------------------------------------------------------- charts
  // A line chart of [{name, color, points: [[t_ms, value], ...]}] with an optional threshold line.
  function lineChart(el, series, opts = {}) {
    const spark = !!opts.spark;
    const W = spark ? 300 : Math.max(360, Math.min(1400, Math.round(el.clientWidth || 600))), H = opts.height || 200, L = spark ? 2 : 48, R = spark ? 2 : 10, T = spark ? 4 : 10, B = spark ? 4 : 24;
    const pts = series.flatMap((x) => x.points);
    if (!pts.length) { el.replaceChildren(h("p", { class: "empty" }, opts.empty || "no data yet")); return; }
    let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
    if (x1 === x0) { x0 -= 1000; x1 += 1000; }
    let y0 = opts.yMin !== undefined ? opts.yMin : Math.min(...pts.map((p) => p[1]));
    let y1 = Math.max(...pts.map((p) => p[1]), opts.threshold !== undefined ? opts.threshold : -Infinity);
    if (y1 === y0) { y1 += 1; y0 -= opts.yMin !== undefined ? 0 : 1; }
    y1 += (y1 - y0) * 0.05;
    const X = (t) => L + ((t - x0) / (x1 - x0)) * (W - L - R);
    const Y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
    const g = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "chart" });
    g.append(s("title", {}, opts.label || "chart"));
    for (let i = 0; i <= (spark ? -1 : 4); i++) {
      const v = y0 + ((y1 - y0) * i) / 4;
      g.append(s("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), stroke: "#e3e6ea" }));
      g.append(s("text", { x: L - 4, y: Y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#4a5360" }, fmtAxis(v)));
    }
    for (const t of spark ? [] : [x0, (x0 + x1) / 2, x1]) {
      g.append(s("text", { x: X(t), y: H - 6, "text-anchor": "middle", "font-size": 11, fill: "#4a5360" }, clock(t)));
    }
    if (opts.threshold !== undefined && opts.threshold !== null) {
      g.append(s("line", { x1: L, x2: W - R, y1: Y(opts.threshold), y2: Y(opts.threshold), stroke: "#b00020", "stroke-dasharray": "6 4", "stroke-width": 1.5 }));
      g.append(s("text", { x: W - R, y: Y(opts.threshold) - 4, "text-anchor": "end", "font-size": 11, fill: "#b00020" }, `threshold ${opts.threshold}`));
    }
    for (const x of series) {
      const sorted = [...x.points].sort((a, b) => a[0] - b[0]);
      if (opts.dots || sorted.length < 2) {
        for (const p of sorted) {
          const over = opts.threshold !== undefined && p[1] > opts.threshold;
          g.append(s("circle", { cx: X(p[0]), cy: Y(p[1]), r: over ? 3.5 : 2, fill: over ? "#b00020" : x.color }));
        }
      }
      if (sorted.length >= 2) {
        g.append(s("polyline", { points: sorted.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" "), fill: "none", stroke: x.color, "stroke-width": 1.5 }));
      }
    }
    const legend = series.length > 1 || opts.legend ? h("p", { class: "legend" }, series.map((x) => h("span", { style: null, "data-color": x.color }, x.name))) : null;
    el.replaceChildren(g, ...(legend ? [legend] : []));
    if (legend) legend.querySelectorAll("span").forEach((sp) => { sp.style.setProperty("--swatch", sp.dataset.color); });
  }
  function fmtAxis(v) {
    const a = Math.abs(v);
    if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
    if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
    if (a >= 100) return v.toFixed(0);
    return v.toFixed(a < 1 ? 2 : 1);
  }
  // Horizontal bars: [{label, value, color}]
  function barChart(el, items, opts = {}) {
    if (!items.length) { el.replaceChildren(h("p", { class: "empty" }, opts.empty || "no data yet")); return; }
    const W = Math.max(360, Math.min(1400, Math.round(el.clientWidth || 600))), row = 26, L = 150, R = 60, H = items.length * row + 8;
    const max = Math.max(...items.map((i) => i.value), 1e-9);
    const g = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "bar chart" });
    g.append(s("title", {}, opts.label || "bar chart"));
    items.forEach((it, i) => {
      const y = 4 + i * row;
      g.append(s("text", { x: L - 8, y: y + 16, "text-anchor": "end", "font-size": 13, fill: "#1b1f24" }, it.label));
      g.append(s("rect", { x: L, y: y + 3, width: Math.max(1, ((W - L - R) * it.value) / max), height: row - 8, fill: it.color || COLORS[i % COLORS.length], rx: 3 }));
      g.append(s("text", { x: L + ((W - L - R) * it.value) / max + 6, y: y + 16, "font-size": 13, fill: "#1b1f24" }, opts.format ? opts.format(it.value) : it.value));
    });
    el.replaceChildren(g);
  }
  // Stacked horizontal bars: rows [{label, parts: [{name, value, color}]}]
  function stackedChart(el, rows, opts = {}) {
    if (!rows.length) { el.replaceChildren(h("p", { class: "empty" }, opts.empty || "no data yet")); return; }
    const W = Math.max(360, Math.min(1400, Math.round(el.clientWidth || 600))), row = 28, L = 150, R = 50, H = rows.length * row + 8;
    const max = Math.max(...rows.map((r) => r.parts.reduce((a, p) => a + p.value, 0)), 1);
    const g = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "stacked chart" });
    g.append(s("title", {}, opts.label || "stacked chart"));
    rows.forEach((r, i) => {
      const y = 4 + i * row;
      let x = L;
      g.append(s("text", { x: L - 8, y: y + 17, "text-anchor": "end", "font-size": 13, fill: "#1b1f24" }, r.label));
      for (const p of r.parts) {
        const w = ((W - L - R) * p.value) / max;
        if (w > 0) {
          const rect = s("rect", { x, y: y + 3, width: w, height: row - 8, fill: p.color });
          rect.append(s("title", {}, `${p.name}: ${p.value}`));
          g.append(rect);
        }
        x += w;
      }
      g.append(s("text", { x: x + 6, y: y + 17, "font-size": 13, fill: "#1b1f24" }, r.parts.reduce((a, p) => a + p.value, 0)));
    });
    const legend = h("p", { class: "legend" }, (opts.legend || []).map(([name, color]) => h("span", { "data-color": color }, name)));
    el.replaceChildren(g, legend);
    legend.querySelectorAll("span").forEach((sp) => { sp.style.setProperty("--swatch", sp.dataset.color); });
  }

  // ----------------------------------------------------------------------------------------- overview
  async function overviewPage() {
    const liveCounts = new Map();
    let data = null;
    const render = () => {
      if (!data) return;
      setText("#n-online", data.totals.online);
      setText("#n-degraded", data.totals.degraded);
      setText("#n-offline", data.totals.offline);
      setText("#n-rate", data.events_per_min);
      setText("#n-alerts", data.open_alerts_total);
      setText("#alerts-by-sev", Object.entries(data.open_alerts).map(([k, v]) => `${k}: ${v}`).join(" · "));
      lineChart($("#rate-chart"), [{ name: "events/min", color: "#0b57a4", points: data.rate.map((p) => [Date.parse(p.minute), p.events]) }], { height: 50, spark: true, yMin: 0, label: "events per minute, last 30 minutes", empty: "no events in 30 min" });
      stackedChart($("#sites-chart"), data.sites.map((x) => ({ label: x.site || "(no site)", parts: [
        { name: "online", value: x.online, color: "#1e8449" }, { name: "degraded", value: x.degraded, color: "#b9770e" }, { name: "offline", value: x.offline, color: "#7b7d7d" }] })),
        { label: "devices per site", legend: [["online", "#1e8449"], ["degraded", "#b9770e"], ["offline", "#7b7d7d"]], empty: "no devices yet" });
      fill($("#sites-table tbody"), data.sites.map((x) => h("tr", {}, h("td", {}, x.site || "(no site)"), h("td", {}, x.online), h("td", {}, x.degraded), h("td", {}, x.offline))), "no devices yet");
      fill($("#models-table tbody"), data.models.map((m) => h("tr", {}, h("td", {}, m.model), h("td", {}, m.mver ?? "–"), h("td", {}, m.devices), h("td", {}, m.online))), "no models reported yet");
      const q = ($("#device-filter").value || "").toLowerCase();
      const rows = data.devices.filter((d) => !q || [d.id, d.site, d.model].some((v) => v && String(v).toLowerCase().includes(q)));
      fill($("#devices-table tbody"), rows.map((d) => h("tr", { "data-device": d.id },
        h("td", {}, h("a", { href: `/devices/${encodeURIComponent(d.id)}` }, d.id)), h("td", {}, d.site || "–"), h("td", {}, badge(d.status)),
        h("td", {}, d.model ? `${d.model} v${d.mver ?? "?"}` : "–"), h("td", {}, d.firmware || "–"), h("td", {}, ago(d.last_seen)),
        h("td", {}, d.open_alerts || ""), h("td", { class: "live-count" }, liveCounts.get(d.id) || 0))), "no devices yet: start a device or `make demo`");
    };
    const load = async () => { data = await api("/ui/overview.json"); render(); };
    $("#device-filter").addEventListener("input", render);
    await load();
    setInterval(load, 10000);
    live(null, {
      events: (m) => {
        for (const [dev, n] of Object.entries(m.devices)) {
          liveCounts.set(dev, (liveCounts.get(dev) || 0) + n);
          const cell = document.querySelector(`#devices-table tr[data-device="${CSS.escape(dev)}"] .live-count`);
          if (cell) cell.textContent = liveCounts.get(dev);
        }
      },
      reload: load,
    });
  }

  // ------------------------------------------------------------------------------------------- device
  async function devicePage() {
    const id = body.dataset.device;
    const enc = encodeURIComponent(id);
    const events = [];  // newest first: {time_ms, model, mver, kind, label, score, anom, lat_us}
    let labelNames = {};
    const thresholdInput = $("#anom-threshold");
    const labelOf = (e) => (e.label === null || e.label === undefined ? "–" : (labelNames[`${e.model}:${e.mver}`] || [])[e.label] || `#${e.label}`);

    function row(e, fresh) {
      return h("tr", { class: fresh ? "fresh" : null }, h("td", {}, clock(e.time_ms)), h("td", {}, `${e.model} v${e.mver ?? "?"}`),
        h("td", {}, KINDS[e.kind] || e.kind), h("td", {}, labelOf(e)), h("td", {}, num(e.score)), h("td", {}, num(e.anom, 3)), h("td", {}, e.lat_us ?? "–"));
    }
    function charts() {
      const anom = events.filter((e) => e.anom !== null && e.anom !== undefined).map((e) => [e.time_ms, e.anom]);
      lineChart($("#anom-chart"), [{ name: "anomaly score", color: "#8e44ad", points: anom }], { threshold: Number(thresholdInput.value), yMin: 0, dots: true, label: "anomaly score with threshold", empty: "no anomaly scores yet" });
      const byModel = new Map();
      for (const e of events) if (e.lat_us) { const k = `${e.model} v${e.mver}`; if (!byModel.has(k)) byModel.set(k, []); byModel.get(k).push([e.time_ms, e.lat_us]); }
      lineChart($("#lat-chart"), [...byModel.entries()].map(([name, points], i) => ({ name, points, color: COLORS[i % COLORS.length] })), { yMin: 0, legend: true, label: "inference latency in microseconds", empty: "no latencies yet" });
      const lats = events.map((e) => e.lat_us).filter(Boolean).sort((a, b) => a - b);
      setText("#dev-lat", lats.length ? `${lats[Math.floor(lats.length / 2)]} µs` : "–");
    }
    function addEvents(list, fresh) {
      const tbody = $("#events-table tbody");
      if (tbody.querySelector(".empty")) tbody.replaceChildren();
      for (const e of list) { events.unshift(e); tbody.prepend(row(e, fresh)); }
      events.splice(600);
      while (tbody.rows.length > 200) tbody.deleteRow(-1);
      charts();
    }
    async function labels(stats) {
      const counts = Object.entries(stats.labels).sort((a, b) => b[1] - a[1]);
      const model = events.find((e) => e.kind === 0);
      const names = model ? labelNames[`${model.model}:${model.mver}`] || [] : [];
      barChart($("#label-chart"), counts.map(([k, v], i) => ({ label: names[Number(k)] || `label ${k}`, value: v, color: COLORS[i % COLORS.length] })), { label: "events per label, last hour", empty: "no classifications in the last hour" });
    }
    async function loadNames(list) {
      for (const key of new Set(list.filter((e) => e.kind === 0).map((e) => `${e.model}:${e.mver}`))) {
        if (key in labelNames) continue;
        const [m, v] = key.split(":");
        labelNames[key] = [];
        try { labelNames[key] = (await api(`/api/v1/models/${encodeURIComponent(m)}/versions/${v}`)).labels || []; } catch (_) { /* not in the registry */ }
      }
    }
    async function load() {
      const d = await api(`/api/v1/devices/${enc}`);
      const st = $("#dev-status"); st.replaceChildren(badge(d.online ? "online" : "offline"));
      setText("#dev-model", d.model ? `${d.model} v${d.mver ?? "?"}` : "–");
      setText("#dev-fw", d.firmware || "–");
      setText("#dev-seen", ago(d.last_seen));
      setText("#dev-site", (d.tags && d.tags.site) || "–");
      const page = await api(`/api/v1/devices/${enc}/events?limit=300`);
      const list = page.items.map((e) => ({ time_ms: Date.parse(e.time), model: e.model, mver: e.mver, kind: e.kind, label: e.label, score: e.score, anom: e.anom, lat_us: e.lat_us })).reverse();
      await loadNames(list);
      events.length = 0; $("#events-table tbody").replaceChildren();
      addEvents(list, false);
      if (!list.length) fill($("#events-table tbody"), [], "no events yet");
      const since = new Date(Date.now() - 3600e3).toISOString();
      labels(await api(`/api/v1/events/stats?device_id=${enc}&bucket=1h&since=${encodeURIComponent(since)}`));
      const tel = (await api(`/api/v1/devices/${enc}/telemetry?limit=120`)).items;
      lineChart($("#tel-chart"), [
        { name: "battery %", color: "#1e8449", points: tel.filter((t) => t.battery_pct !== null).map((t) => [Date.parse(t.time), t.battery_pct]) },
        { name: "RSSI dBm (+100)", color: "#0b57a4", points: tel.filter((t) => t.rssi_dbm !== null).map((t) => [Date.parse(t.time), t.rssi_dbm + 100]) },
      ], { yMin: 0, legend: true, label: "battery and signal strength", empty: "no telemetry yet" });
      const last = tel[0];
      $("#tel-latest").replaceChildren(...(last ? [["time", ago(last.time)], ["uptime", `${last.uptime_s ?? "–"} s`], ["battery", `${last.battery_pct ?? "–"} % (${last.battery_mv ?? "–"} mV)`],
        ["RSSI", `${last.rssi_dbm ?? "–"} dBm`], ["free heap", last.heap_free ?? "–"], ["free arena", last.arena_free ?? "–"], ["inferences", last.infer_count ?? "–"],
        ["latency avg / max", `${last.lat_avg_us ?? "–"} / ${last.lat_max_us ?? "–"} µs`], ["dropped", last.dropped ?? "–"]].flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]) : []));
      const ota = (await api(`/api/v1/devices/${enc}/ota-reports?limit=50`)).items;
      fill($("#ota-table tbody"), ota.map((r) => h("tr", {}, h("td", {}, ago(r.received_at)), h("td", {}, badge(r.state)), h("td", {}, r.model ? `${r.model} v${r.mver ?? "?"}` : "–"), h("td", {}, r.seq ?? "–"), h("td", {}, r.reason || r.message || ""))), "no OTA reports from this device");
    }
    const form = $("#cmd-form");
    if (form) form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const out = $("#cmd-result");
      try {
        const args = JSON.parse($("#cmd-args").value || "{}");
        const sent = await api(`/api/v1/devices/${enc}/commands`, { method: "POST", json: { name: $("#cmd-name").value, args } });
        out.textContent = `sent ${sent.name} (id ${sent.id}) on ${sent.topic}`;
      } catch (e) { out.textContent = `not sent: ${e.message}`; }
    });
    thresholdInput.addEventListener("input", charts);
    await load();
    live(id, {
      events: async (m) => { await loadNames(m.events); addEvents(m.events, true); setText("#dev-seen", "just now"); },
      reload: load,
    });
  }

  // ------------------------------------------------------------------------------------------- alerts
  async function alertsPage() {
    const form = $("#alert-filters");
    const msg = $("#alert-message");
    async function history(id) {
      const a = await api(`/api/v1/alerts/${id}`);
      $("#history-section").hidden = false;
      setText("#history-id", `#${id} (${a.rule_id} · ${a.group_key})`);
      $("#history").replaceChildren(...a.history.map((e) => h("li", {}, h("strong", {}, e.kind), " ", new Date(e.at).toLocaleString(),
        e.detail && Object.keys(e.detail).length ? h("details", {}, h("summary", {}, "detail"), h("pre", {}, JSON.stringify(e.detail, null, 2))) : null)));
    }
    async function act(id, op) {
      try {
        const a = await api(`/api/v1/alerts/${id}/${op}?by=${encodeURIComponent(ACTOR)}`, { method: "POST" });
        msg.textContent = `alert ${id} is ${a.state}`;
        await load();
      } catch (e) { msg.textContent = `alert ${id}: ${e.message}`; }
    }
    async function load() {
      const p = new URLSearchParams({ limit: "200" });
      for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
      const page = await api(`/api/v1/alerts?${p}`);
      fill($("#alerts-table tbody"), page.items.map((a) => h("tr", { "data-alert": a.id },
        h("td", {}, a.id), h("td", {}, a.rule_id), h("td", {}, a.group_key ? h("a", { href: `/devices/${encodeURIComponent(a.group_key)}` }, a.group_key) : "–"),
        h("td", {}, badge(a.severity)), h("td", { class: "state" }, badge(a.state)), h("td", {}, ago(a.opened_at)),
        h("td", {}, a.resolved_by || a.acknowledged_by || ""),
        h("td", { class: "buttons" },
          CAN_WRITE && a.state === "open" ? h("button", { type: "button", class: "ack", onclick: () => act(a.id, "ack"), "aria-label": `Acknowledge alert ${a.id}` }, "Acknowledge") : null,
          CAN_WRITE && a.state !== "resolved" ? h("button", { type: "button", class: "secondary resolve", onclick: () => act(a.id, "resolve"), "aria-label": `Resolve alert ${a.id}` }, "Resolve") : null,
          h("button", { type: "button", class: "secondary", onclick: () => history(a.id), "aria-label": `History of alert ${a.id}` }, "History")))), "no alerts match");
    }
    form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    await load();
    setInterval(load, 15000);
    live(null, {});
  }

  // -------------------------------------------------------------------------------------------- rules
  async function rulesPage() {
    async function load() {
      const r = await api("/api/v1/rules");
      setText("#rules-meta", r.running ? `${r.rules.length} rule(s) from ${r.rules_dir}, loaded ${ago(r.loaded_at)} · ${r.events_fed} events evaluated` : "This process runs no rules (no ingest).");
      $("#errors-section").hidden = !r.errors.length;
      $("#rule-errors").replaceChildren(...r.errors.map((e) => h("li", {}, e.location)));
      fill($("#rules-table tbody"), r.rules.map((x) => h("tr", {}, h("td", { class: "mono" }, x.id), h("td", {}, x.description), h("td", {}, badge(x.severity)),
        h("td", {}, x.actions.join(", ") || "–"), h("td", { class: "mono" }, x.source || ""),
        h("td", {}, x.last_firing ? [`${x.last_firing.kind} · ${x.last_firing.group} · ${ago(x.last_firing.at)} · `, h("a", { href: `/alerts` }, `alert #${x.last_firing.alert_id}`)] : "never"))), "no rules loaded");
    }
    const btn = $("#rules-reload");
    if (btn) btn.addEventListener("click", async () => {
      try { await api("/api/v1/rules/reload", { method: "POST" }); setText("#rules-message", "rules reloaded"); }
      catch (e) { setText("#rules-message", `refused: ${e.message}`); }
      await load();
    });
    await load();
    live(null, {});
  }

  // ------------------------------------------------------------------------------------------- models
  async function modelsPage() {
    const reg = $("#registry");
    const models = (await api("/api/v1/models")).items;
    if (!models.length) reg.replaceChildren(h("p", { class: "empty" }, "no models registered (tinyfleet models push)"));
    else reg.replaceChildren();
    for (const m of models) {
      const versions = (await api(`/api/v1/models/${encodeURIComponent(m.name)}/versions`)).items;
      reg.append(h("h3", {}, m.name, m.description ? ` — ${m.description}` : ""),
        h("div", { class: "scroll", tabindex: "0" }, h("table", { class: "data" }, h("caption", { class: "sr-only" }, `versions of ${m.name}`),
          h("thead", {}, h("tr", {}, ["Version", "Size", "Precision", "Parameters", "Arena", "Labels", ""].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, versions.map((v) => h("tr", {}, h("td", {}, v.version), h("td", {}, `${(v.size / 1024).toFixed(1)} KiB`), h("td", {}, v.precision), h("td", {}, v.parameters),
            h("td", {}, v.arena_bytes ? `${(v.arena_bytes / 1024).toFixed(1)} KiB` : "not loadable"), h("td", {}, (v.labels || []).slice(0, 6).join(", ")),
            h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => inspect(m.name, v.version), "aria-label": `Inspect ${m.name} v${v.version}` }, "Inspect"))))))));
    }
    async function inspect(name, version) {
      const v = await api(`/api/v1/models/${encodeURIComponent(name)}/versions/${version}`);
      const i = v.inspection || {};
      $("#inspection").replaceChildren(h("h3", {}, `${name} v${version}`),
        h("dl", { class: "kv" }, [["sha256", v.sha256 || i.sha256 || "–"], ["size", `${v.size} B`], ["precision", v.precision], ["parameters", v.parameters],
          ["weights", i.weight_bytes !== undefined ? `${i.weight_bytes} B` : "–"], ["operators", i.operators ?? "–"], ["schema", i.schema_version ?? "–"],
          ["TFLM arena", v.arena ? (v.arena.arena_bytes ? `${v.arena.arena_bytes} B (${v.arena.probes} probes, ${v.arena.tflm_version || "?"})` : `not loadable: ${v.arena.reason || "?"}`) : "–"],
          ["task", (v.card && v.card.task) || "–"], ["accuracy", v.card && v.card.accuracy !== null && v.card.accuracy !== undefined ? v.card.accuracy : "–"], ["labels", (v.labels || []).join(", ") || "–"],
          ["inputs", (v.inputs || []).map((t) => `${t.dtype || t.type || ""}[${(t.shape || []).join("×")}]`).join(", ")],
          ["outputs", (v.outputs || []).map((t) => `${t.dtype || t.type || ""}[${(t.shape || []).join("×")}]`).join(", ")]].flatMap(([k, val]) => [h("dt", {}, k), h("dd", { class: k === "sha256" ? "mono" : null }, String(val))])),
        h("h4", {}, "Ops"), barChart.length ? (() => { const d = h("div"); barChart(d, (v.ops || []).map((o, j) => ({ label: o.name || o.op || String(o.builtin || "?"), value: o.count || 1, color: COLORS[j % COLORS.length] })), { label: "operators used" }); return d; })() : null);
    }
    const releases = new Map((await api("/api/v1/releases")).items.map((r) => [r.id, r]));
    const rollouts = (await api("/api/v1/rollouts")).items;
    fill($("#rollouts-table tbody"), rollouts.map((r) => {
      const rel = releases.get(r.release_id);
      const total = Object.values(r.totals).reduce((a, b) => a + b, 0);
      const done = (r.totals.confirmed || 0) + (r.totals.current || 0);
      return h("tr", {}, h("td", {}, h("a", { href: `/rollouts/${r.id}` }, `#${r.id}`)), h("td", {}, rel ? `${rel.name} (${rel.model} v${rel.model_version})` : r.release_id),
        h("td", {}, badge(r.state)), h("td", {}, r.wave + 1), h("td", {}, `${done}/${total} confirmed`), h("td", {}, ago(r.started_at)), h("td", {}, r.reason || ""));
    }), "no rollouts yet");
    live(null, {});
  }

  // ------------------------------------------------------------------------------------------ rollout
  async function rolloutPage() {
    const id = body.dataset.rollout;
    const STATUS_COLORS = { confirmed: "#1e8449", current: "#52be80", applied: "#2e86c1", verified: "#5dade2", downloaded: "#85c1e9", downloading: "#aed6f1", sent: "#b9770e",
      pending: "#bdc3c7", failed: "#b00020", skipped: "#7b7d7d", rolled_back: "#6c3483", rolling_back: "#a569bd" };
    async function load() {
      const r = await api(`/api/v1/rollouts/${id}`);
      const rel = await api(`/api/v1/releases/${r.release_id}`);
      $("#ro-state").replaceChildren(badge(r.state));
      setText("#ro-release", `Release ${rel.name}: ${rel.model} v${rel.model_version} · started ${ago(r.started_at)} · wave ${r.wave + 1} since ${ago(r.wave_started_at)}`);
      setText("#ro-reason", r.reason ? `Reason: ${r.reason}` : "");
      const statuses = [...new Set(Object.values(r.waves).flatMap((w) => Object.keys(w)))];
      stackedChart($("#waves"), Object.entries(r.waves).map(([w, counts]) => ({ label: `wave ${Number(w) + 1}${Number(w) === r.wave ? " (now)" : ""}`,
        parts: statuses.map((st) => ({ name: st, value: counts[st] || 0, color: STATUS_COLORS[st] || "#999" })) })),
        { label: "devices per wave and status", legend: statuses.map((st) => [st, STATUS_COLORS[st] || "#999"]), empty: "no waves" });
      const decisions = (await api(`/api/v1/rollouts/${id}/decisions`)).items;
      const withGates = decisions.filter((d) => d.evidence && d.evidence.gates && d.evidence.gates.gates);
      const latest = withGates[withGates.length - 1];
      if (latest) {
        const gates = latest.evidence.gates.gates;
        $("#gates").replaceChildren(h("p", {}, "Verdict ", badge(latest.evidence.gates.verdict), ` at ${new Date(latest.at).toLocaleString()} (${latest.action})`),
          h("div", { class: "scroll", tabindex: "0" }, h("table", { class: "data" }, h("caption", { class: "sr-only" }, "gates"), h("thead", {}, h("tr", {}, ["Gate", "Verdict", "Value", "Threshold", "Canary", "Control"].map((c) => h("th", { scope: "col" }, c)))),
            h("tbody", {}, gates.map((g) => {
              const d = g.detail || {};
              const pick = (side) => Object.entries(d).filter(([k]) => k.startsWith(side)).map(([k, v]) => `${k.slice(side.length + 1)} ${typeof v === "number" ? num(v, 3) : v}`).join(", ");
              return h("tr", {}, h("td", { class: "mono" }, g.gate), h("td", {}, badge(g.verdict)), h("td", {}, num(g.value, 3)), h("td", {}, g.threshold), h("td", {}, pick("canary")), h("td", {}, pick("control")));
            })))));
        const pickEl = $("#gate-pick");
        const names = [...new Set(withGates.flatMap((d) => d.evidence.gates.gates.map((g) => g.gate)))];
        const failed = gates.find((g) => g.verdict === "fail");
        const chosen = pickEl.value || (failed ? failed.gate : names[0]);
        pickEl.replaceChildren(...names.map((n) => h("option", { value: n, selected: n === chosen }, n)));
        const drawGate = () => {
          const name = pickEl.value;
          const pts = withGates.map((d) => [Date.parse(d.at), (d.evidence.gates.gates.find((g) => g.gate === name) || {}).value]).filter((p) => p[1] !== null && p[1] !== undefined);
          const thr = (gates.find((g) => g.gate === name) || {}).threshold;
          lineChart($("#gate-chart"), [{ name, color: "#0b57a4", points: pts }], { threshold: thr, dots: true, label: `${name} over the rollout's evaluations`, empty: "no measured value yet (insufficient data)" });
        };
        pickEl.onchange = drawGate;
        drawGate();
      } else {
        $("#gates").replaceChildren(h("p", { class: "empty" }, "no comparison yet: canaries not confirmed"));
      }
      $("#decisions").replaceChildren(...[...decisions].reverse().map((d) => h("li", {}, badge(d.action), " ", h("strong", {}, `wave ${d.wave + 1}`), ` · ${new Date(d.at).toLocaleString()} · ${d.actor} — ${d.reason}`,
        d.evidence ? h("details", {}, h("summary", {}, "evidence"), h("pre", {}, JSON.stringify(d.evidence, null, 2))) : null)));
      const devs = (await api(`/api/v1/rollouts/${id}/devices?limit=500`)).items;
      fill($("#ro-devices tbody"), devs.map((d) => h("tr", {}, h("td", {}, h("a", { href: `/devices/${encodeURIComponent(d.device_id)}` }, d.device_id)), h("td", {}, d.wave + 1),
        h("td", {}, d.from_model ? `${d.from_model} v${d.from_version ?? "?"}` : "–"), h("td", {}, badge(d.status)), h("td", {}, d.reason || ""))), "no devices");
    }
    const actions = $("#ro-actions");
    if (actions) actions.addEventListener("click", async (ev) => {
      const op = ev.target && ev.target.dataset && ev.target.dataset.op;
      if (!op) return;
      try { await api(`/api/v1/rollouts/${id}/${op}`, { method: "POST", json: { reason: `from the UI by ${ACTOR}` } }); setText("#ro-message", `${op}: done`); }
      catch (e) { setText("#ro-message", `${op}: ${e.message}`); }
      await load();
    });
    await load();
    setInterval(load, 5000);
    live(null, {});
  }

  const pages = { overview: overviewPage, device: devicePage, alerts: alertsPage, rules: rulesPage, models: modelsPage, rollout: rolloutPage };
  const page = body.dataset.device ? "device" : body.dataset.rollout ? "rollout" : body.dataset.page;
  if (pages[page]) pages[page]().catch((e) => {
    const main = $("#main");
    main.prepend(h("p", { class: "error", role: "alert" }, `Could not load: ${e.message}`));
  });
})();
