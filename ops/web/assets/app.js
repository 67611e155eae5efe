// pxewim dashboard: renders the JSON API; the clients table is pushed by server-sent events.
"use strict";
(function () {
  const $ = (s) => document.querySelector(s);
  let clients = [];
  let current = null; // key of the client whose trace is shown
  let sortKey = "lastSeen", sortDir = -1; // the clients table's order (click a header)
  const SVG = "http://www.w3.org/2000/svg";

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function bytes(n) {
    if (n == null || n < 0) return "?";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  function ago(t) {
    const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
    if (s < 60) return Math.round(s) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    return Math.round(s / 3600) + " h ago";
  }
  const ms = (ns) => (ns / 1e6).toFixed(ns < 1e7 ? 1 : 0) + " ms";
  const secs = (s) => s < 1 ? Math.round(s * 1000) + " ms" : s.toFixed(s < 10 ? 1 : 0) + " s";
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }
  const lastTransfer = (c) => (c.transfers && c.transfers.length) ? c.transfers[c.transfers.length - 1] : c.last;

  // The value a column sorts by.
  function sortValue(c, key) {
    const t = lastTransfer(c);
    switch (key) {
      case "mac": return c.mac || c.key;
      case "ip": return (c.ip || "").split(".").map((p) => p.padStart(3, "0")).join(".");
      case "entry": return [c.bootFile, c.entry].filter(Boolean).join(" ");
      case "progress": return t && t.size > 0 ? t.bytes / t.size : -1;
      case "rate": return t ? t.rate : -1;
      case "lastSeen": return new Date(c.lastSeen).getTime();
      default: return c[key] == null ? "" : String(c[key]);
    }
  }
  function visibleClients() {
    const q = $("#filter").value.trim().toLowerCase();
    const stage = $("#stage-filter").value;
    const out = clients.filter((c) => (!stage || c.stage === stage) &&
      (!q || [c.mac, c.key, c.ip, c.vendor, c.entry, c.bootFile].some((f) => f && f.toLowerCase().includes(q))));
    out.sort((a, b) => {
      const x = sortValue(a, sortKey), y = sortValue(b, sortKey);
      return (x < y ? -1 : x > y ? 1 : 0) * sortDir || (a.key < b.key ? -1 : 1);
    });
    return out;
  }

  function transferCell(c) {
    const t = lastTransfer(c);
    if (!t) return el("td", {text: "—"});
    // A finished transfer with an error failed, however many bytes it sent: it is never "done".
    const state = !t.done ? "running" : (t.err ? "failed" : "done");
    const td = el("td", {class: "xfer xfer-" + state, "data-state": state});
    const bar = el("progress", {class: "progress", "data-mac": c.key});
    if (t.size > 0) { bar.max = t.size; bar.value = Math.min(t.bytes, t.size); }
    const pct = t.size > 0 ? Math.floor(100 * t.bytes / t.size) + "%" : bytes(t.bytes);
    td.append(bar, " ", el("span", {class: "pct", text: state === "failed" ? "failed at " + pct : pct}),
      el("span", {class: "path", text: t.proto + " " + t.path + (t.range ? " [" + t.range + "]" : "") + (state === "running" ? "" : " (" + state + ")")}));
    return td;
  }
  function throughput(c) {
    const t = lastTransfer(c);
    return t && t.rate > 0 ? bytes(t.rate) + "/s" : "—";
  }

  function renderClients() {
    const tb = $("#clients tbody");
    tb.replaceChildren();
    $("#client-count").textContent = clients.length ? "(" + clients.length + ")" : "";
    $("#no-clients").hidden = clients.length > 0;
    const shown = visibleClients();
    $("#shown-count").textContent = shown.length === clients.length ? "" : "showing " + shown.length + " of " + clients.length;
    for (const c of shown) {
      const tr = el("tr", {class: "client", "data-key": c.key},
        el("td", {class: "mono"}, el("a", {href: "#/client/" + encodeURIComponent(c.key), text: c.mac || c.key})),
        el("td", {class: "mono", text: c.ip || "—"}),
        el("td", {text: c.vendor || "—"}),
        el("td", {text: (c.firmware || "?") + (c.arch >= 0 ? " (" + c.arch + ")" : "") + (c.ipxe ? ", iPXE" : "") + (c.httpBoot ? ", HTTP Boot" : "")}),
        el("td", {class: "mono", text: [c.bootFile, c.entry].filter(Boolean).join(" → ") || "—"}),
        el("td", {}, el("span", {class: "stage stage-" + c.stage, text: c.stage})),
        transferCell(c),
        el("td", {class: "num", text: throughput(c)}),
        el("td", {}, c.lastError ? el("span", {class: "err", text: c.lastError}) : "—", c.hint ? el("span", {class: "hint", text: c.hint}) : null),
        el("td", {text: ago(c.lastSeen)}));
      tr.addEventListener("click", (e) => { if (e.target.tagName !== "A") location.hash = "#/client/" + encodeURIComponent(c.key); });
      tb.append(tr);
    }
  }

  async function getJSON(url) {
    const r = await fetch(url, {cache: "no-store"});
    if (!r.ok) throw new Error(url + ": " + r.status + " " + (await r.text()));
    return r.json();
  }

  async function renderCatalog() {
    const rows = await getJSON("api/catalog");
    const tb = $("#catalog tbody");
    tb.replaceChildren();
    $("#no-catalog").hidden = rows.length > 0;
    for (const r of rows) {
      tb.append(el("tr", {},
        el("td", {class: "mono", text: r.file}),
        el("td", {class: "num", text: r.index || "—"}),
        el("td", {text: (r.name || "") + (r.windowsPE ? " (Windows PE)" : "")}),
        el("td", {text: r.arch || "—"}),
        el("td", {text: r.codec || "—"}),
        el("td", {class: "num", text: bytes(r.size)}),
        el("td", {}, ...(r.bootFiles || []).map((b) => el("div", {text: b}))),
        el("td", {class: "loaders"}, ...(r.loaders || []).map((l) => el("div",
          {class: "loader " + (l.digestOK && !l.warning ? "sig-ok" : "sig-warn"), "data-path": l.path, title: l.warning || ""},
          el("span", {class: "mono", text: l.path + ": "}), l.summary))),
        el("td", {}, ...(r.problems || []).map((p) => el("div", {class: "err problem", text: p})),
          ...(r.notes || []).map((n) => el("div", {class: "note"}, el("span", {class: "note-tag", text: "note: "}), n)))));
    }
  }


  // A filled line chart of values (oldest first) into an <svg>, with the peak as a label.
  function drawChart(box, values, step, fmt) {
    const W = box.clientWidth || 600, H = box.clientHeight || 110, pad = 16;
    box.setAttribute("viewBox", "0 0 " + W + " " + H);
    const max = Math.max(1, ...values);
    const x = (i) => (i / (values.length - 1)) * W;
    const y = (v) => H - pad - (v / max) * (H - 2 * pad);
    let d = "M0," + (H - pad);
    values.forEach((v, i) => { d += " L" + x(i).toFixed(1) + "," + y(v).toFixed(1); });
    d += " L" + W + "," + (H - pad) + " Z";
    box.replaceChildren(
      svg("line", {class: "grid", x1: 0, x2: W, y1: y(max), y2: y(max)}),
      svg("line", {class: "grid", x1: 0, x2: W, y1: H - pad, y2: H - pad}),
      svg("path", {class: "area", d: d, "data-points": values.length, "data-max": max}),
      svg("text", {x: 4, y: y(max) - 3}, "peak " + fmt(max)),
      svg("text", {x: 4, y: H - 3}, Math.round(values.length * step / 60) + " min ago"),
      svg("text", {x: W - 4, y: H - 3, "text-anchor": "end"}, "now"));
  }

  async function renderCharts() {
    let s;
    try { s = await getJSON("api/series"); } catch (e) { return; }
    const rate = s.bytes.map((b) => b / s.step);
    drawChart($("#chart-bytes"), rate, s.step, (v) => bytes(v) + "/s");
    drawChart($("#chart-clients"), s.clients, s.step, (v) => String(v));
    $("#chart-bytes-now").textContent = bytes(rate[rate.length - 1]) + "/s now";
    $("#chart-clients-now").textContent = s.clients[s.clients.length - 1] + " now";
  }

  // The client's boot timeline: one lane per request, a bar from its start to its end (transfers
  // still in flight end at the server's "now"), DHCP exchanges as diamonds, and hatched gaps where
  // nothing was in flight for a noticeable time (the client was waiting: a menu, a timeout, a
  // slow firmware step).
  function drawTimeline(trace, live, nowISO) {
    const box = $("#timeline");
    const now = new Date(nowISO).getTime();
    const items = trace.map((e) => {
      const start = new Date(e.time).getTime();
      return {start, end: start + (e.proto === "dhcp" ? 0 : e.duration / 1e6), proto: e.proto, what: e.what,
        bytes: e.bytes, failed: !!e.err || (e.proto === "http" && +e.status >= 400), live: false};
    });
    for (const t of live || []) {
      const start = new Date(t.started).getTime();
      items.push({start, end: Math.max(start, now), proto: t.proto, what: (t.proto === "tftp" ? "RRQ " : "GET ") + t.path,
        bytes: t.bytes, failed: false, live: true});
    }
    items.sort((a, b) => a.start - b.start);
    if (!items.length) { box.replaceChildren(); box.setAttribute("height", 0); return; }
    const t0 = items[0].start, t1 = Math.max(...items.map((i) => i.end), t0 + 1);
    const W = Math.max(600, box.clientWidth || 1000), left = 8, right = 330, lane = 18, top = 24;
    const H = top + items.length * lane + 8;
    const x = (t) => left + ((t - t0) / (t1 - t0)) * (W - left - right);
    box.setAttribute("viewBox", "0 0 " + W + " " + H);
    box.setAttribute("height", H);
    const kids = [svg("defs", {}), svg("line", {class: "tl-axis", x1: left, x2: W - right, y1: top - 6, y2: top - 6})];
    const hatch = svg("pattern", {id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)"});
    hatch.append(svg("rect", {width: 6, height: 6, fill: "#f6f8fa"}), svg("line", {x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#d0d7de", "stroke-width": 2}));
    kids[0].append(hatch);
    // Gaps: idle stretches between busy intervals longer than 1 s or 5% of the span.
    let busyEnd = items[0].end;
    for (const it of items.slice(1)) {
      const gap = it.start - busyEnd;
      if (gap > Math.max(1000, 0.05 * (t1 - t0))) {
        kids.push(svg("rect", {class: "tl-gap", x: x(busyEnd), y: top - 4, width: Math.max(1, x(it.start) - x(busyEnd)), height: H - top,
          "data-ms": Math.round(gap)}));
        kids.push(svg("text", {class: "tl-gap-label", x: (x(busyEnd) + x(it.start)) / 2, y: top - 10, "text-anchor": "middle"}, "waited " + secs(gap / 1000)));
      }
      busyEnd = Math.max(busyEnd, it.end);
    }
    kids.push(svg("text", {x: left, y: 12}, "0 s"), svg("text", {x: W - right, y: 12, "text-anchor": "end"}, secs((t1 - t0) / 1000)));
    items.forEach((it, i) => {
      const y = top + i * lane;
      const label = it.what + (it.proto === "dhcp" ? "" : " · " + bytes(it.bytes) + " · " + secs((it.end - it.start) / 1000) + (it.live ? " (in flight)" : ""));
      if (it.proto === "dhcp") {
        const cx = x(it.start), cy = y + 7;
        kids.push(svg("path", {class: "tl-dhcp", d: "M" + cx + "," + (cy - 6) + " l6,6 l-6,6 l-6,-6 Z", "data-proto": "dhcp"}));
      } else {
        kids.push(svg("rect", {class: "tl-bar" + (it.failed ? " tl-failed" : "") + (it.live ? " tl-live" : ""), "data-proto": it.proto,
          "data-ms": Math.round(it.end - it.start), x: x(it.start), y: y, width: Math.max(2, x(it.end) - x(it.start)), height: 14}));
      }
      // Long paths keep their end (the file's name), the full text is the tooltip.
      const what = it.what.length > 34 ? it.what.split(" ")[0] + " …" + it.what.slice(-28) : it.what;
      const short = what + label.slice(it.what.length);
      const txt = svg("text", {class: "tl-label", x: W - right + 8, y: y + 11}, short);
      txt.append(svg("title", {}, label));
      kids.push(txt);
    });
    box.replaceChildren(...kids);
  }

  async function renderTrace() {
    if (!current) return;
    let d;
    try { d = await getJSON("api/client?key=" + encodeURIComponent(current)); } catch (e) { $("#trace-summary").textContent = e.message; return; }
    const c = d.client;
    $("#trace-mac").textContent = c.mac || c.key;
    $("#trace-summary").replaceChildren(el("p", {text: "IP " + (c.ip || "?") + " · " + (c.vendor || "unknown vendor") + " · " +
      (c.firmware || "?") + " · stage " + c.stage + " · " + bytes(c.bytesSent) + " served" + (c.lastError ? " · last error: " + c.lastError : "")}),
      c.hint ? el("p", {class: "hint", text: c.hint}) : "");
    drawTimeline(d.trace, c.transfers, d.now);
    const tb = $("#trace tbody");
    tb.replaceChildren();
    for (const e of d.trace) {
      tb.append(el("tr", {class: "trace-row"},
        el("td", {class: "num", text: e.seq}),
        el("td", {class: "mono", text: new Date(e.time).toLocaleTimeString()}),
        el("td", {text: e.proto}),
        el("td", {class: "mono", text: e.what}),
        el("td", {class: "mono", text: e.range || ""}),
        el("td", {text: e.status}),
        el("td", {class: "num", text: e.proto === "dhcp" ? "" : bytes(e.bytes) + " / " + bytes(e.size)}),
        el("td", {class: "num", text: e.proto === "dhcp" ? "" : ms(e.duration)}),
        el("td", {class: "err", text: e.err || ""})));
    }
  }

  function route() {
    const h = location.hash || "#/clients";
    const m = h.match(/^#\/client\/(.+)$/);
    current = m ? decodeURIComponent(m[1]) : null;
    $("#view-clients").hidden = !(h === "#/clients" || h === "#/" || h === "");
    $("#view-catalog").hidden = h !== "#/catalog";
    $("#view-client").hidden = !current;
    $("#nav-clients").classList.toggle("active", !$("#view-clients").hidden);
    $("#nav-catalog").classList.toggle("active", !$("#view-catalog").hidden);
    if (h === "#/catalog") renderCatalog().catch((e) => console.error(e));
    if (current) renderTrace();
  }

  function connect() {
    const es = new EventSource("api/events");
    es.addEventListener("clients", (ev) => {
      clients = JSON.parse(ev.data);
      renderClients();
      if (current) renderTrace();
    });
    es.onopen = () => { $("#live").textContent = "live"; $("#live").className = "live on"; };
    es.onerror = () => { $("#live").textContent = "reconnecting…"; $("#live").className = "live off"; };
  }

  for (const th of document.querySelectorAll("#clients th[data-sort]")) {
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      sortDir = key === sortKey ? -sortDir : (key === "lastSeen" || key === "rate" || key === "progress" ? -1 : 1);
      sortKey = key;
      for (const o of document.querySelectorAll("#clients th[data-sort]")) o.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      renderClients();
    });
  }
  $("#filter").addEventListener("input", renderClients);
  $("#stage-filter").addEventListener("change", renderClients);
  renderCharts();
  setInterval(renderCharts, 10000);

  window.addEventListener("hashchange", route);
  getJSON("api/info").then((i) => {
    $("#version").textContent = "pxewim " + (i.version || "");
    if (i.listen) $("#listen").textContent = i.listen;
  }).catch(() => {});
  route();
  connect();
})();
