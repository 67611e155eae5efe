// pxewim dashboard: renders the JSON API; the clients table is pushed by server-sent events.
"use strict";
(function () {
  const $ = (s) => document.querySelector(s);
  let clients = [];
  let current = null; // key of the client whose trace is shown

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

  function transferCell(c) {
    const t = (c.transfers && c.transfers.length) ? c.transfers[c.transfers.length - 1] : c.last;
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
    const t = (c.transfers && c.transfers.length) ? c.transfers[c.transfers.length - 1] : c.last;
    return t && t.rate > 0 ? bytes(t.rate) + "/s" : "—";
  }

  function renderClients() {
    const tb = $("#clients tbody");
    tb.replaceChildren();
    $("#client-count").textContent = clients.length ? "(" + clients.length + ")" : "";
    $("#no-clients").hidden = clients.length > 0;
    for (const c of clients) {
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
        el("td", {}, ...(r.problems || []).map((p) => el("div", {class: "err problem", text: p})),
          ...(r.notes || []).map((n) => el("div", {class: "note"}, el("span", {class: "note-tag", text: "note: "}), n)))));
    }
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

  window.addEventListener("hashchange", route);
  getJSON("api/info").then((i) => {
    $("#version").textContent = "pxewim " + (i.version || "");
    if (i.listen) $("#listen").textContent = i.listen;
  }).catch(() => {});
  route();
  connect();
})();
