// rollout-trace serve: the page. Plain JavaScript, no dependencies.
// Every string from a trace goes into the DOM through textContent or an
// attribute value (h() below); nothing is ever parsed as HTML.
"use strict";

// ------------------------------------------------------------ helpers

// Bidirectional-override characters would reorder what is shown around them
// (e.g. make a command read backwards): show them as visible markers instead.
const BIDI = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;
const HAS_BIDI = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/;
function shown(value) {
  const text = String(value);
  return HAS_BIDI.test(text) ? text.replace(BIDI, (c) => `⟦U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}⟧`) : text;
}

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = shown(value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(shown(child)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "text") el.textContent = shown(value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children) if (child) el.append(child);
  return el;
}

function put(el, ...children) { return append(clear(el), children); }

function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

async function getJSON(url) {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

function q(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== null && value !== undefined) search.set(key, value);
  return search.toString();
}

function duration(ms) {
  if (ms === null || ms === undefined) return "running";
  if (ms < 1000) return `${ms}ms`;
  const sec = Math.floor(ms / 1000);
  if (sec < 60) return `${sec}.${Math.floor((ms % 1000) / 100)}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m${String(sec % 60).padStart(2, "0")}s`;
  return `${Math.floor(sec / 3600)}h${String(Math.floor((sec % 3600) / 60)).padStart(2, "0")}m`;
}

function when(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function num(n) { return n === null || n === undefined ? "" : Number(n).toLocaleString("en-US"); }
function bytes(n) {
  if (n === null || n === undefined) return "?";
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1 << 20)).toFixed(1)} MB`;
}
function short(id) { return id && id.length > 24 ? id.slice(0, 10) + "…" + id.slice(-8) : id; }

function badge(status) { return h("span", { class: `badge st-${status}`, text: status }); }

const FAILED = new Set(["failed", "aborted", "cancelled", "unreadable", "error", "terminated"]);

// An EventSource that is open only while the tab is visible (browsers allow
// six connections per host; background tabs should not hold them). Returns
// the function that closes it.
function liveEvents(url, handlers) {
  let source = null;
  const open = () => {
    if (source) return;
    source = new EventSource(url);
    for (const [name, handler] of Object.entries(handlers)) source.addEventListener(name, handler);
  };
  const close = () => { if (source) { source.close(); source = null; } };
  const onVisibility = () => { if (document.hidden) close(); else open(); };
  document.addEventListener("visibilitychange", onVisibility);
  window.addEventListener("pagehide", close);
  if (!document.hidden) open();
  return () => { close(); document.removeEventListener("visibilitychange", onVisibility); window.removeEventListener("pagehide", close); };
}

// Appends make(item) for each item: the first screenful at once, the rest in
// chunks between frames, so a long list shows at once and stays responsive.
// Stops when alive() turns false (the view was replaced); done() after the last.
function inChunks(parent, items, make, alive, done) {
  const FIRST = 120, CHUNK = 400;
  let next = 0;
  const step = (count) => {
    if (!alive()) return;
    const fragment = document.createDocumentFragment();
    for (const end = Math.min(items.length, next + count); next < end; next++) fragment.append(make(items[next]));
    parent.append(fragment);
    if (next < items.length) setTimeout(() => step(CHUNK), 0);
    else { parent.dataset.complete = "1"; if (done) done(); }
  };
  step(FIRST);
}

// ------------------------------------------------------------ routing

const app = document.getElementById("app");
const crumbs = document.getElementById("crumbs");
const live = document.getElementById("live");
let teardown = [];

function route() {
  for (const stop of teardown) stop();
  teardown = [];
  document.body.dataset.ready = "";
  delete document.body.dataset.readyMs;
  const hash = location.hash.slice(1) || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  if (path === "/bundle" && params.get("b")) bundlePage(params);
  else listPage();
}

function bundleHash(b, extra) { return "#/bundle?" + q({ b, ...(extra || {}) }); }

window.addEventListener("hashchange", route);
// Rows and graph edges are focusable (tabindex); Enter opens them like a click.
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && ev.target instanceof Element && ev.target.matches(".row, g.edge, tr.clickable")) {
    ev.preventDefault();
    ev.target.dispatchEvent(new MouseEvent("click", { bubbles: true }));
  }
});
document.addEventListener("DOMContentLoaded", route);

// ------------------------------------------------------------ the bundle list

const listState = { sort: "started", desc: true, filter: "", status: "", data: null, shown: 2000 };

const COLUMNS = [
  ["started", "Started"], ["id", "Bundle"], ["status", "Status"], ["duration_ms", "Duration"], ["models", "Model(s)"],
  ["input", "Input"], ["cached", "Cached"], ["output", "Output"], ["reasoning", "Reasoning"],
  ["tool_calls", "Tools"], ["failures", "Failures"], ["first_user", "First user message"],
];

function rowValue(row, key) {
  if (["input", "cached", "output", "reasoning"].includes(key)) return row.usage ? row.usage[key] : -1;
  if (key === "models") return (row.models || []).join(", ");
  if (key === "status") return row.error ? "error" : row.status || "";
  const value = row[key];
  return value === null || value === undefined ? (typeof value === "string" ? "" : -1) : value;
}

function listPage() {
  clear(crumbs);
  live.hidden = true;
  const filter = h("input", { id: "filter", type: "search", placeholder: "filter: id, model, message, status…", value: listState.filter });
  const status = h("select", { id: "status-filter" },
    ["", "completed", "running", "failed", "aborted", "error"].map((v) => h("option", { value: v, text: v || "any status" })));
  status.value = listState.status;
  const info = h("span", { id: "list-info", class: "muted" });
  const table = h("table", { id: "bundles", class: "grid" });
  const more = h("div", { id: "list-more" });
  put(app, h("section", { class: "list" }, h("div", { class: "toolbar" }, filter, status, info), table, more));

  let renderToken = 0;
  const body = h("tbody");
  const rowCache = new Map();  // bundle id -> {json, el}: a row is rebuilt only when its data changed
  function cachedRow(row) {
    const json = JSON.stringify(row);
    const known = rowCache.get(row.id);
    if (known && known.json === json) return known.el;
    const el = listRow(row);
    rowCache.set(row.id, { json, el });
    return el;
  }
  function render() {
    const data = listState.data;
    if (!data) return;
    const needle = listState.filter.trim().toLowerCase();
    let rows = data.bundles.filter((row) => {
      if (listState.status && rowValue(row, "status") !== listState.status) return false;
      if (!needle) return true;
      return [row.id, row.status, (row.models || []).join(" "), row.first_user || "", row.error || ""]
        .join("\n").toLowerCase().includes(needle);
    });
    const key = listState.sort, sign = listState.desc ? -1 : 1;
    rows.sort((a, b) => {
      const x = rowValue(a, key), y = rowValue(b, key);
      return (x < y ? -1 : x > y ? 1 : 0) * sign || (a.id < b.id ? -1 : 1);
    });
    info.textContent = `${rows.length} of ${data.bundles.length} bundles` + (data.pending ? ` · summarizing ${data.pending}…` : "") + ` · ${data.root}`;
    const head = h("tr", {}, COLUMNS.map(([k, label]) => h("th", {
      class: k === key ? (listState.desc ? "sorted desc" : "sorted asc") : "", "data-key": k,
      onclick: () => { if (listState.sort === k) listState.desc = !listState.desc; else { listState.sort = k; listState.desc = k !== "id"; } render(); },
    }, label)));
    const token = ++renderToken;
    const finished = () => {
      if (!data.pending && !document.body.dataset.listAllRowsMs) document.body.dataset.listAllRowsMs = String(performance.now());
    };
    const shownRows = rows.slice(0, listState.shown);
    if (!body.isConnected || !body.firstChild) {
      // first render: the first screenful at once, the rest in chunks
      put(table, h("thead", {}, head), clear(body));
      inChunks(body, shownRows, cachedRow, () => token === renderToken, finished);
    } else {
      // later renders (rows summarized, a live bundle changed, sorting, filtering): reuse unchanged
      // rows, so the table keeps its height and the reader's scroll position
      put(table, h("thead", {}, head), body);
      body.replaceChildren(...shownRows.map(cachedRow));
      body.dataset.complete = "1";
      finished();
    }
    clear(more);
    if (rows.length > listState.shown) {
      more.append(h("button", { onclick: () => { listState.shown += 2000; render(); }, text: `show ${Math.min(2000, rows.length - listState.shown)} more` }));
    }
  }

  let timer = null;
  filter.addEventListener("input", () => { listState.filter = filter.value; clearTimeout(timer); timer = setTimeout(render, 120); });
  status.addEventListener("change", () => { listState.status = status.value; render(); });

  let inflight = false, again = false;
  async function load() {
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      const data = await getJSON("/api/bundles");
      const same = listState.data && JSON.stringify(listState.data.bundles) === JSON.stringify(data.bundles) && listState.data.pending === data.pending;
      listState.data = data;
      if (!same || !table.firstChild) render();
      document.body.dataset.listVersion = String(listState.data.version);
      // for bench/serve_bench.py: when the rows were first shown, and first shown complete
      if (!document.body.dataset.listMs) document.body.dataset.listMs = String(performance.now());
      if (!listState.data.pending && !document.body.dataset.listCompleteMs) document.body.dataset.listCompleteMs = String(performance.now());
      if (listState.data.single && listState.data.bundles.length === 1 && !sessionStorage.getItem("rt-left-single")) {
        sessionStorage.setItem("rt-left-single", "1");
        location.hash = bundleHash(listState.data.bundles[0].id);
      }
    } catch (error) {
      info.textContent = `cannot list bundles: ${error.message}`;
    } finally {
      inflight = false;
      if (again) { again = false; setTimeout(load, 200); }
    }
  }
  load();
  teardown.push(liveEvents("/api/events", { bundles: () => load() }));
}

function listRow(row) {
  const link = bundleHash(row.id);
  const cell = (content, cls) => h("td", { class: cls || "" }, content);
  if (row.state === "pending") {
    return h("tr", { class: "pending", "data-id": row.id }, cell(when(row.started), "nowrap"), cell(h("a", { href: link, text: row.id })),
      cell(h("span", { class: "muted", text: "…" })), COLUMNS.slice(3).map(() => cell("")));
  }
  const u = row.usage || {};
  const status = row.error ? h("span", {}, badge(row.status === "unreadable" ? "unreadable" : "error"), row.status !== "unreadable" ? h("span", { class: "muted", text: " lenient view" }) : null) : badge(row.status);
  const first = row.error
    ? h("div", {}, h("div", { class: "error-text", text: row.error }), row.first_user ? h("div", { class: "clip", text: row.first_user }) : null)
    : h("div", { class: "clip", text: row.first_user || "" });
  return h("tr", { "data-id": row.id, class: row.error ? "has-error" : "" },
    cell(when(row.started), "nowrap"), cell(h("a", { href: link, text: row.id }), "id"), cell(status),
    cell(duration(row.duration_ms), "num"), cell((row.models || []).join(", ")),
    cell(num(u.input), "num"), cell(num(u.cached), "num"), cell(num(u.output), "num"), cell(num(u.reasoning), "num"),
    cell(num(row.tool_calls), "num"), cell(row.failures ? h("span", { class: "fail", text: num(row.failures) }) : "0", "num"),
    cell(first, "first"));
}

// ------------------------------------------------------------ a bundle

function bundlePage(params) {
  const b = params.get("b");
  const st = {
    b, overview: null, thread: params.get("t"), tab: params.get("tab") || "timeline", selected: null,
    follow: localStorage.getItem("rt-follow") === "1", transcriptLimit: 200,
  };
  const sel = params.get("sel");
  if (sel && sel.includes(":")) st.selected = { kind: sel.slice(0, sel.indexOf(":")), id: sel.slice(sel.indexOf(":") + 1) };

  put(crumbs, h("span", { class: "sep", text: "›" }), h("span", { id: "crumb-bundle", text: b }));
  const banner = h("div", { id: "banner" });
  const stats = h("div", { id: "stats" });
  const searchBox = h("input", { id: "search", type: "search", placeholder: "search ids, tool names, text…", autocomplete: "off" });
  const results = h("div", { id: "search-results", hidden: true });
  const follow = h("input", { id: "follow", type: "checkbox" });
  follow.checked = st.follow;
  const tree = h("nav", { id: "threads" });
  const tabs = h("div", { id: "tabs" });
  const view = h("div", { id: "view" });
  const side = h("aside", { id: "detail" }, h("p", { class: "muted", text: "Select a turn, inference, tool call or item." }));
  put(app, h("section", { class: "bundle" },
    h("div", { class: "bundle-head" }, stats,
      h("div", { class: "searchwrap" }, searchBox, results),
      h("label", { class: "follow" }, follow, " follow latest")),
    banner,
    h("div", { class: "panes" }, tree, h("div", { class: "center" }, tabs, view), side)));

  follow.addEventListener("change", () => { st.follow = follow.checked; localStorage.setItem("rt-follow", st.follow ? "1" : "0"); if (st.follow) followLatest(); });

  function updateHash() {
    const extra = { t: st.thread, tab: st.tab };
    if (st.selected) extra.sel = `${st.selected.kind}:${st.selected.id}`;
    history.replaceState(null, "", bundleHash(b, extra));
  }

  function threadLabel(id) {
    const t = st.overview && st.overview.threads.find((x) => x.id === id);
    if (!t) return short(id || "?");
    return t.nickname ? `${t.agent_path} (${t.nickname})` : t.agent_path;
  }

  // -- header, banner and thread tree

  function renderHead() {
    const o = st.overview;
    const sm = o.summary || {};
    const u = sm.usage || {};
    put(stats, 
      h("span", { class: "title", text: b }), o.status ? badge(o.status) : null,
      h("span", { class: "kv" }, "started ", h("b", { text: when(o.started) })),
      h("span", { class: "kv" }, "duration ", h("b", { text: duration(sm.duration_ms) })),
      h("span", { class: "kv" }, "models ", h("b", { text: (sm.models || []).join(", ") || "–" })),
      h("span", { class: "kv" }, "tokens in ", h("b", { text: num(u.input) }), " cached ", h("b", { text: num(u.cached) }),
        " out ", h("b", { text: num(u.output) }), " reasoning ", h("b", { text: num(u.reasoning) })),
      h("span", { class: "kv" }, "tools ", h("b", { text: num(sm.tool_calls) }), " failures ",
        h("b", { class: sm.failures ? "fail" : "", text: num(sm.failures || 0) })));
    clear(banner);
    if (o.error) {
      banner.append(h("div", { class: "error-banner" },
        h("b", { text: o.trace_id ? `Strict replay failed; showing the lenient view${o.partial ? " (partial replay)" : ""}. ` : "This bundle cannot be replayed. " }),
        h("span", { class: "error-text", text: o.error })));
    }
    for (const d of o.diagnostics || []) banner.append(h("div", { class: "warn-banner", text: `skipped: ${d}` }));
    const running = o.status === "running";
    live.hidden = !running;
    live.textContent = running ? "● live" : "";
  }

  function renderTree() {
    const o = st.overview;
    const children = {};
    for (const t of o.threads) (children[t.parent || ""] = children[t.parent || ""] || []).push(t);
    const spawnEdges = {};
    for (const e of o.edges) if (e.kind === "spawn_agent" && e.target_thread) spawnEdges[e.target_thread] = e;
    function node(t) {
      const kids = children[t.id] || [];
      return h("li", {},
        h("a", {
          href: "#", class: "thread" + (t.id === st.thread ? " active" : ""), "data-thread": t.id,
          onclick: (ev) => { ev.preventDefault(); selectThread(t.id); },
        },
          h("span", { class: "path", text: t.agent_path }), t.nickname ? h("span", { class: "nick", text: ` ${t.nickname}` }) : null,
          " ", badge(t.window.status),
          h("div", { class: "meta muted" }, `${t.turns} turns · ${t.inference_calls} inferences · ${t.tool_calls} tools · ${duration(t.window.ms)}`),
          t.task_name ? h("div", { class: "meta muted" }, `task ${t.task_name}${t.agent_role ? " · " + t.agent_role : ""}`) : null,
          spawnEdges[t.id] && spawnEdges[t.id].tool_call_id ? h("div", { class: "meta" }, h("a", {
            href: "#", class: "spawn-link", text: "spawned by tool call",
            onclick: (ev) => { ev.preventDefault(); ev.stopPropagation(); select("tool", spawnEdges[t.id].tool_call_id); },
          })) : null),
        kids.length ? h("ul", {}, kids.map(node)) : null);
    }
    const roots = o.threads.filter((t) => !t.parent || !o.threads.some((x) => x.id === t.parent));
    put(tree, h("h3", { text: "Threads" }), h("ul", { class: "tree" }, roots.map(node)));
  }

  function renderTabs() {
    const names = [["timeline", "Timeline"], ["transcript", "Transcript"], ["graph", "Agent graph"], ["prompt", "Prompt inspector"]];
    put(tabs, names.map(([key, label]) => h("button", {
      class: "tab" + (st.tab === key ? " active" : ""), "data-tab": key,
      onclick: () => { st.tab = key; updateHash(); renderTabs(); renderView(); },
    }, label)));
  }

  function selectThread(id) {
    st.thread = id;
    if (st.tab === "prompt") st.tab = "timeline";
    updateHash(); renderTree(); renderTabs(); renderView();
  }

  // -- center views

  let viewToken = 0;
  async function renderView() {
    const token = ++viewToken;
    const place = `${st.tab}|${st.thread}|${st.promptFor || ""}`;
    const keepScroll = place === st.lastPlace ? view.scrollTop : 0;  // a live refresh keeps the reader's place
    st.lastPlace = place;
    try {
      if (st.tab === "timeline") await renderTimeline(token);
      else if (st.tab === "transcript") await renderTranscript(token);
      else if (st.tab === "graph") renderGraph();
      else if (st.tab === "prompt") await renderPrompt(token);
    } catch (error) {
      if (token === viewToken) put(view, h("div", { class: "error-banner", text: `cannot load: ${error.message}` }));
    }
    if (token === viewToken) { if (st.follow) followLatest(); else view.scrollTop = keepScroll; }
  }

  function followLatest() {
    view.scrollTop = view.scrollHeight;
  }

  function isSelected(kind, id) { return st.selected && st.selected.kind === kind && st.selected.id === id; }

  async function renderTimeline(token) {
    const data = await getJSON("/api/timeline?" + q({ b, t: st.thread }));
    if (token !== viewToken) return;
    const w = data.thread.window;
    const t0 = w.start, t1 = Math.max(w.end || Date.now(), t0 + 1);
    const span = t1 - t0;
    const rows = h("div", { class: "timeline", id: "timeline" });
    function bar(win) {
      const el = h("span", { class: `bar st-${win.status}` });
      const left = Math.max(0, (win.start - t0) / span), right = Math.min(1, ((win.end || t1) - t0) / span);
      el.style.left = `${(left * 100).toFixed(2)}%`;
      el.style.width = `${Math.max(0.3, (right - left) * 100).toFixed(2)}%`;
      return h("span", { class: "track" }, el);
    }
    function label(entry) {
      if (entry.type === "turn") return [h("span", { class: "kind", text: "turn" }), " ", h("span", { class: "mono muted", text: short(entry.id) }),
        entry.preview ? h("span", { class: "preview", text: ` ${entry.preview}` }) : null];
      if (entry.type === "inference") {
        const u = entry.usage;
        return [h("span", { class: "kind k-inf", text: "inference" }), ` ${entry.model}`,
          u ? h("span", { class: "muted", text: ` · in ${num(u.input)} (cached ${num(u.cached)}) out ${num(u.output)}` }) : null];
      }
      if (entry.type === "cell") return [h("span", { class: "kind k-cell", text: "code cell" }), ` ${entry.runtime_status}`];
      if (entry.type === "compaction") return [h("span", { class: "kind k-comp", text: "compaction" }), ` ${entry.label.replace(/^compaction: /, "")}`];
      const term = entry.terminal;
      return [h("span", { class: "kind k-tool", text: term ? "terminal" : "tool" }), " ", h("span", { class: "mono", text: entry.label }),
        term && term.exit_code !== null && term.exit_code !== undefined ? h("span", { class: term.exit_code === 0 ? "muted" : "fail", text: ` exit ${term.exit_code}` }) : null];
    }
    function row([entry, depth]) {
      const kind = entry.type === "turn" ? "turn" : entry.type;
      const failed = FAILED.has(entry.window.status);
      const el = h("div", {
        class: `row d${depth}` + (failed ? " failed" : "") + (isSelected(kind, entry.id) ? " selected" : ""),
        "data-kind": kind, "data-id": entry.id, tabindex: "0",
        onclick: () => select(kind, entry.id),
      },
        h("span", { class: "lab" }, h("span", { class: "indent" }), label(entry)),
        h("span", { class: "status" }, badge(entry.window.status)),
        h("span", { class: "dur num", text: duration(entry.window.ms) }),
        bar(entry.window));
      return el;
    }
    const flat = [];
    const walk = (entry, depth) => { flat.push([entry, depth]); for (const child of entry.children || []) walk(child, depth + 1); };
    for (const turn of data.turns) walk(turn, 0);
    if (!data.turns.length) rows.append(h("p", { class: "muted", text: "No turns yet." }));
    put(view, h("div", { class: "view-head" },
      h("b", { text: threadLabel(st.thread) }), " ", badge(w.status), h("span", { class: "muted", text: ` ${duration(w.ms)} · ${data.turns.length} turns · ${flat.length} rows` })), rows);
    inChunks(rows, flat, row, () => token === viewToken, () => { if (st.follow) followLatest(); });
  }

  function itemView(item, opts) {
    const role = item.channel ? `${item.role}/${item.channel}` : item.role;
    const body = h("pre", { class: "body", text: item.text });
    const more = item.length > item.text.length ? h("button", {
      class: "link", text: `show all ${num(item.length)} chars`,
      onclick: async (ev) => { ev.stopPropagation(); const full = await getJSON("/api/object?" + q({ b, kind: "item", id: item.id })); body.textContent = shown(full.text); ev.target.remove(); },
    }) : null;
    const origin = item.origin && item.origin.id ? h("a", {
      href: "#", class: "origin", text: `from ${item.origin.type} ${short(item.origin.id.id)}`,
      onclick: (ev) => { ev.preventDefault(); ev.stopPropagation(); select(item.origin.id.type, item.origin.id.id); },
    }) : h("span", { class: "origin muted", text: `from ${item.origin ? item.origin.type : "?"}` });
    const head = h("div", { class: "item-head" }, h("span", { class: `role r-${item.role}`, text: role }), " ",
      h("span", { class: "muted", text: item.kind }), item.call_id ? h("span", { class: "mono muted", text: ` ${item.call_id}` }) : null,
      item.agent_message ? h("span", { class: "muted", text: ` ${item.agent_message.author} → ${item.agent_message.recipient}` }) : null,
      item.tool ? h("a", { href: "#", class: "toolref", text: ` → ${item.tool.name}`,
        onclick: (ev) => { ev.preventDefault(); ev.stopPropagation(); select("tool", item.tool.id); } }) : null,
      " ", origin, h("span", { class: "mono muted id", text: ` ${item.id}` }));
    const folded = item.kind === "reasoning" || (opts && opts.fold);
    const content = folded ? h("details", {}, h("summary", { text: item.kind === "reasoning" ? "reasoning" : "show" }), body, more) : [body, more];
    return h("div", {
      class: `item r-${item.role}` + (isSelected("item", item.id) ? " selected" : ""), "data-id": item.id,
      onclick: (opts && opts.noselect) ? null : () => select("item", item.id),
    }, head, content);
  }

  async function renderTranscript(token) {
    const data = await getJSON("/api/transcript?" + q({ b, t: st.thread, offset: 0, limit: st.transcriptLimit }));
    if (token !== viewToken) return;
    const list = h("div", { class: "transcript", id: "transcript" }, data.items.map((item) => itemView(item)));
    const more = data.total > data.items.length ? h("button", {
      text: `load ${Math.min(200, data.total - data.items.length)} more of ${data.total - data.items.length}`,
      onclick: () => { st.transcriptLimit += 200; renderView(); },
    }) : null;
    put(view, h("div", { class: "view-head" }, h("b", { text: threadLabel(st.thread) }),
      h("span", { class: "muted", text: ` ${data.total} items` })), list, more);
  }

  function renderGraph() {
    const o = st.overview;
    const byId = {};
    const children = {};
    for (const t of o.threads) { byId[t.id] = t; (children[t.parent || ""] = children[t.parent || ""] || []).push(t); }
    // Lay the thread tree out: depth gives the row, leaves take columns in order.
    const pos = {};
    let column = 0;
    function place(t, depth) {
      const kids = children[t.id] || [];
      if (!kids.length) { pos[t.id] = { x: column++, y: depth }; return; }
      for (const k of kids) place(k, depth + 1);
      const xs = kids.map((k) => pos[k.id].x);
      pos[t.id] = { x: (Math.min(...xs) + Math.max(...xs)) / 2, y: depth };
    }
    for (const t of o.threads.filter((t) => !t.parent || !byId[t.parent])) place(t, 0);
    const W = 220, H = 150, nodeW = 170, nodeH = 46, pad = 30;
    const cols = Math.max(1, column), rowsN = Math.max(1, ...Object.values(pos).map((p) => p.y + 1));
    const width = cols * W + pad * 2, height = rowsN * H + pad;
    const cx = (id) => pad + pos[id].x * W + W / 2, cy = (id) => pad + pos[id].y * H + nodeH / 2;
    const svg = s("svg", { id: "graph", viewBox: `0 0 ${width} ${height}`, width, height, role: "img" },
      s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))));
    const pairCount = {};
    const edges = o.edges.slice().sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1));
    const labels = [];
    edges.forEach((e, index) => {
      if (!pos[e.source_thread] || !pos[e.target_thread]) return;
      const key = [e.source_thread, e.target_thread].sort().join("|");
      const n = (pairCount[key] = (pairCount[key] || 0) + 1);
      const x1 = cx(e.source_thread), y1 = cy(e.source_thread), x2 = cx(e.target_thread), y2 = cy(e.target_thread);
      const down = y2 >= y1 ? 1 : -1;
      const side = n % 2 ? 1 : -1;
      const bend = side * (16 + Math.floor((n - 1) / 2) * 30);
      const sy = y1 + down * nodeH / 2, ey = y2 - down * nodeH / 2;
      const mx = (x1 + x2) / 2 + bend * 2, my = (sy + ey) / 2;
      const ax = x1 + bend / 2, bx = x2 + bend / 2;
      const d = `M${ax},${sy} Q${mx},${my} ${bx},${ey}`;
      const lx = 0.25 * ax + 0.5 * mx + 0.25 * bx, ly = 0.25 * sy + 0.5 * my + 0.25 * ey;
      const target = e.tool_call_id ? { kind: "tool", id: e.tool_call_id } : (e.target.type === "item" ? { kind: "item", id: e.target.id } : { kind: "edge", id: e.id });
      const g = s("g", { class: `edge e-${e.kind}` + (isSelected(target.kind, target.id) ? " selected" : ""), "data-edge": e.id, tabindex: 0,
        onclick: () => select(target.kind, target.id) },
        s("title", { text: `#${index + 1} ${e.kind}: ${threadLabel(e.source_thread)} → ${threadLabel(e.target_thread)}` }),
        s("path", { d, class: "hit" }), s("path", { d, class: "line", "marker-end": "url(#arrow)" }));
      svg.append(g);
      labels.push(s("g", { class: `elabel e-${e.kind}`, onclick: () => select(target.kind, target.id) },
        s("circle", { cx: lx, cy: ly, r: 8 }), s("text", { x: lx, y: ly + 3.5, "text-anchor": "middle", text: String(index + 1) })));
    });
    for (const label of labels) svg.append(label);
    for (const t of o.threads) {
      if (!pos[t.id]) continue;
      const x = cx(t.id) - nodeW / 2, y = cy(t.id) - nodeH / 2;
      svg.append(s("g", { class: `node st-${t.window.status}` + (t.id === st.thread ? " active" : ""), "data-thread": t.id, onclick: () => selectThread(t.id) },
        s("rect", { x, y, width: nodeW, height: nodeH, rx: 6 }),
        s("text", { x: x + 10, y: y + 19, class: "npath", text: t.agent_path.length > 24 ? "…" + t.agent_path.slice(-23) : t.agent_path }),
        s("text", { x: x + 10, y: y + 36, class: "nmeta", text: `${t.nickname || ""} ${t.window.status} ${duration(t.window.ms)}`.trim() })));
    }
    const legend = h("div", { class: "legend" }, ["spawn_agent", "assign_agent_task", "send_message", "agent_result", "close_agent"]
      .map((k) => h("span", { class: `key e-${k}` }, h("span", { class: "swatch" }), k)));
    const table = h("table", { class: "grid edges" }, h("thead", {}, h("tr", {}, ["#", "Time", "Kind", "From", "To", "Opens"].map((x) => h("th", { text: x })))),
      h("tbody", {}, edges.map((e, index) => {
        const target = e.tool_call_id ? ["tool", e.tool_call_id, "tool call"] : e.target.type === "item" ? ["item", e.target.id, "delivered message"] : ["edge", e.id, "edge"];
        return h("tr", { class: "clickable", "data-edge": e.id, tabindex: "0", onclick: () => select(target[0], target[1]) },
          h("td", { class: "num", text: String(index + 1) }), h("td", { class: "nowrap", text: when(e.start) }), h("td", { text: e.kind }),
          h("td", { text: threadLabel(e.source_thread) }), h("td", { text: threadLabel(e.target_thread) }), h("td", { class: "muted", text: target[2] }));
      })));
    put(view, h("div", { class: "view-head" }, h("b", { text: "Agent graph" }),
      h("span", { class: "muted", text: ` ${o.threads.length} threads · ${o.edges.length} interaction edges — click an edge to open the tool call or message behind it` })),
      h("div", { class: "graphwrap" }, svg), legend, table);
  }

  async function renderPrompt(token) {
    const id = st.promptFor;
    if (!id) { put(view, h("p", { class: "muted", text: "Select an inference call (Timeline) and press “Prompt inspector”." })); return; }
    const p = await getJSON("/api/prompt?" + q({ b, id }));
    if (token !== viewToken) return;
    const sec = p.sections;
    const items = (list, fold) => list.length ? list.map((item) => itemView(item, { fold, noselect: false })) : h("p", { class: "muted", text: "none" });
    const section = (key, title, count, content, open) => h("details", { class: "psec", "data-section": key, open: open || null },
      h("summary", {}, h("b", { text: title }), h("span", { class: "muted", text: ` ${count}` })), content);
    const tools = sec.tools.map((tool) => h("details", { class: "tooldef" }, h("summary", {}, h("span", { class: "mono", text: tool.name || "?" }),
      h("span", { class: "muted", text: ` ${tool.type || ""} — ${(tool.description || "").slice(0, 120)}` })),
      h("p", { text: tool.description || "" }), tool.schema ? h("pre", { class: "body", text: tool.schema }) : null));
    const u = p.usage;
    const usage = u ? h("table", { class: "grid usage" }, h("tbody", {},
      [["input", u.input], ["cached input", u.cached], ["uncached input", u.input - u.cached], ["output", u.output], ["reasoning", u.reasoning]]
        .map(([k, v]) => h("tr", {}, h("td", { text: k }), h("td", { class: "num", text: num(v) }))))) : h("p", { class: "muted", text: "no usage reported" });
    put(view, 
      h("div", { class: "view-head" }, h("b", { text: "Prompt inspector" }), " ", h("span", { class: "mono", text: short(p.id) }), " ", badge(p.window.status),
        h("span", { class: "muted", text: ` ${p.model} · ${duration(p.window.ms)}` }),
        p.previous_inference_id ? h("a", { href: "#", class: "prev", text: " · previous inference", onclick: (ev) => { ev.preventDefault(); openPrompt(p.previous_inference_id); } }) : null),
      h("div", { class: "prompt", id: "prompt" },
        h("div", { class: "request" }, h("h3", { text: "Request" }),
          section("instructions", "Instructions", sec.instructions ? `${num(sec.instructions.length)} chars` : "none", sec.instructions ? h("pre", { class: "body", text: sec.instructions }) : h("p", { class: "muted", text: "none" }), true),
          section("developer", "Developer messages", sec.developer.length, items(sec.developer, false), sec.developer.length < 4),
          section("context", "AGENTS.md and environment context", sec.context.length, items(sec.context, false), false),
          section("earlier", "Earlier history", sec.earlier.length, items(sec.earlier, false), false),
          section("new", "New in this request", sec.new.length, items(sec.new, false), true),
          section("tools", "Tool definitions", sec.tools.length, tools, false),
          section("settings", "Request settings", "", h("pre", { class: "body", text: p.settings }), false)),
        h("div", { class: "response" }, h("h3", { text: "Response" }), h("div", { class: "psec" }, h("b", { text: "Token usage" }), usage),
          p.response.length ? p.response.map((item) => itemView(item)) : h("p", { class: "muted", text: "no response items" }),
          payloadList(p.payloads))));
  }

  function openPrompt(id) {
    st.promptFor = id; st.tab = "prompt"; updateHash(); renderTabs(); renderView();
  }

  // -- detail panel

  function link(kind, id, text) {
    return h("a", { href: "#", class: "objlink", "data-kind": kind, "data-id": id, text: text || `${kind} ${short(id)}`,
      onclick: (ev) => { ev.preventDefault(); select(kind, id); } });
  }

  function payloadList(payloads) {
    if (!payloads || !payloads.length) return null;
    return h("div", { class: "payloads" }, h("h4", { text: "Raw payloads" }), payloads.map((p) => payloadButton(p)));
  }

  function payloadButton(p) {
    const out = h("div", { class: "payload-out" });
    const button = h("button", { class: "payload", "data-payload": p.id, text: `${p.kind} · ${p.id} · ${bytes(p.size)}` });
    let opened = false;
    button.addEventListener("click", async () => {
      if (opened) { opened = false; clear(out); return; }
      opened = true;
      await streamPayload(p, out);
    });
    return h("div", { class: "payload-item" }, button, out);
  }

  async function streamPayload(p, out) {
    const url = "/api/payload?" + q({ b, id: p.id });
    const pre = h("pre", { class: "body raw", "data-payload": p.id });
    const status = h("div", { class: "muted", text: "loading…" });
    put(out, status, pre, h("a", { href: url + "&download=1", text: "download", class: "muted" }));
    const response = await fetch(url);
    if (!response.ok) { status.textContent = `cannot load: ${response.status}`; return; }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const LIMIT = 4 << 20;
    let loaded = 0;
    const text = document.createTextNode("");
    pre.append(text);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const chunk = decoder.decode(value, { stream: true });
      if (loaded + chunk.length > LIMIT) {
        text.appendData(shown(chunk.slice(0, LIMIT - loaded)));
        status.textContent = `showing the first ${bytes(LIMIT)} of ${bytes(p.size)} (download for all)`;
        reader.cancel();
        pre.dataset.loaded = "1";
        return;
      }
      text.appendData(shown(chunk));
      loaded += chunk.length;
      status.textContent = `${bytes(loaded)} loaded…`;
    }
    status.textContent = `${bytes(p.size)} on disk, pretty-printed`;
    pre.dataset.loaded = "1";
  }

  function kv(rows) {
    return h("table", { class: "kv" }, h("tbody", {}, rows.filter((r) => r && r[1] !== null && r[1] !== undefined && r[1] !== "")
      .map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", {}, v)))));
  }

  async function select(kind, id) {
    st.selected = { kind, id };
    updateHash();
    for (const el of document.querySelectorAll(".selected")) el.classList.remove("selected");
    for (const el of document.querySelectorAll(`[data-id="${CSS.escape(id)}"]`)) el.classList.add("selected");
    if (kind === "payload") {
      const out = h("div");
      put(side, h("h3", { text: "Raw payload" }), out);
      await streamPayload({ id, kind: "payload", size: null }, out);
      return;
    }
    put(side, h("p", { class: "muted", text: "loading…" }));
    let d;
    try { d = await getJSON("/api/object?" + q({ b, kind, id })); } catch (error) {
      put(side, h("div", { class: "error-banner", text: error.message })); return;
    }
    if (!st.selected || st.selected.id !== id) return;
    if (d.thread_id && d.thread_id !== st.thread && st.overview.threads.some((t) => t.id === d.thread_id) && kind !== "thread") {
      st.thread = d.thread_id; updateHash(); renderTree(); if (st.tab !== "graph" && st.tab !== "prompt") renderView();
    }
    const win = d.window;
    const headLine = h("div", { class: "detail-head" }, h("span", { class: "kind", text: kind }), " ",
      win ? badge(win.status) : null, win ? h("span", { class: "muted", text: ` ${duration(win.ms)}` }) : null);
    const title = h("h3", { class: "mono", text: d.label || d.id });
    const body = [];
    const common = [["id", h("span", { class: "mono", text: d.id })], d.thread_id ? ["thread", link("thread", d.thread_id, threadLabel(d.thread_id))] : null,
      d.turn_id ? ["turn", link("turn", d.turn_id)] : null, win ? ["started", when(win.start)] : null, win && win.end ? ["ended", when(win.end)] : null];
    if (kind === "tool") {
      body.push(kv([...common, ["name", d.name], ["requester", d.requester],
        d.inference_call_id ? ["issued by", link("inference", d.inference_call_id, `inference ${short(d.inference_call_id)}`)] : null,
        d.code_cell_id ? ["code cell", link("cell", d.code_cell_id)] : null]));
      if (d.terminal_detail) body.push(terminalView(d.terminal_detail));
      if (d.edges && d.edges.length) body.push(h("div", {}, h("h4", { text: "Interaction edges" }), d.edges.map((e) => h("div", {}, link("edge", e, e)))));
      if (d.call_items.length) body.push(h("h4", { text: "Call" }), d.call_items.map((i) => itemView(i, { noselect: true })));
      if (d.output_items.length) body.push(h("h4", { text: "Output the model saw" }), d.output_items.map((i) => itemView(i, { noselect: true })));
    } else if (kind === "inference") {
      const u = d.usage;
      body.push(kv([...common, ["model", d.model], ["provider", d.provider], ["response id", d.response_id],
        ["request items", String(d.request_items)],
        u ? ["tokens", `in ${num(u.input)} (cached ${num(u.cached)}) · out ${num(u.output)} (reasoning ${num(u.reasoning)})`] : null]));
      body.push(h("button", { id: "open-prompt", class: "primary", text: "Open prompt inspector", onclick: () => openPrompt(d.id) }));
      if (d.tool_call_ids.length) body.push(h("h4", { text: "Tool calls started" }), d.tool_call_ids.map((t) => h("div", {}, link("tool", t))));
      if (d.response_items.length) body.push(h("h4", { text: "Response" }), d.response_items.map((i) => itemView(i, { noselect: true })));
    } else if (kind === "item") {
      body.push(itemView(d, { noselect: true }));
    } else if (kind === "cell") {
      body.push(kv([...common, ["runtime status", d.runtime_status], d.inference_call_id ? ["written by", link("inference", d.inference_call_id)] : null]));
      body.push(h("h4", { text: "Source" }), h("pre", { class: "body", text: d.source_js }));
      if (d.children.length) body.push(h("h4", { text: "Nested tool calls" }), d.children.map((c) => h("div", {}, link("tool", c.id, c.label))));
      for (const t of d.terminal_operations) body.push(terminalView(t));
      if (d.output_items.length) body.push(h("h4", { text: "Output" }), d.output_items.map((i) => itemView(i, { noselect: true })));
    } else if (kind === "edge") {
      body.push(kv([["id", h("span", { class: "mono", text: d.id })], ["kind", d.kind], ["from", threadLabel(d.source_thread)], ["to", threadLabel(d.target_thread)],
        ["started", when(d.start)], d.tool_call_id ? ["tool call", link("tool", d.tool_call_id)] : null]));
      if (d.carried_items.length) body.push(h("h4", { text: "Carried" }), d.carried_items.map((i) => itemView(i, { noselect: true })));
    } else if (kind === "compaction") {
      body.push(kv([...common, ["installed", when(d.installed_at)], ["input items", String(d.input_items)], ["marker", link("item", d.marker_item_id)]]));
      body.push(h("h4", { text: "Replacement history" }), d.replacement_items.map((i) => itemView(i, { noselect: true, fold: true })));
    } else if (kind === "turn") {
      body.push(kv(common));
      if (d.input_items.length) body.push(h("h4", { text: "Input" }), d.input_items.map((i) => itemView(i, { noselect: true })));
    } else if (kind === "thread") {
      body.push(kv([["id", h("span", { class: "mono", text: d.id })], ["agent path", d.agent_path], ["nickname", d.nickname], ["task", d.task_name],
        ["role", d.agent_role], ["model", d.model], ["turns", String(d.turns)], ["items", String(d.items)]]));
      if (d.edges.length) body.push(h("h4", { text: "Edges" }), d.edges.map((e) => h("div", {}, link("edge", e, e))));
    } else if (kind === "terminal") {
      body.push(terminalView(d));
    }
    body.push(payloadList(d.payloads));
    put(side, headLine, title, body);
    side.scrollTop = 0;
  }

  function terminalView(t) {
    return h("div", { class: "terminal" }, h("h4", { text: `Terminal ${t.kind}` + (t.terminal_id ? ` · session ${t.terminal_id}` : "") }),
      t.command ? h("pre", { class: "cmd", text: `$ ${t.command}` }) : h("pre", { class: "cmd", text: `stdin: ${JSON.stringify(t.stdin)}` }),
      t.cwd ? h("div", { class: "muted", text: `cwd ${t.cwd}` }) : null,
      t.exit_code !== undefined && t.exit_code !== null ? h("div", { class: t.exit_code === 0 ? "muted" : "fail", text: `exit code ${t.exit_code}` }) : null,
      t.output ? h("pre", { class: "body out", text: t.output }) : null);
  }

  // -- search

  let searchTimer = null, searchToken = 0;
  async function runSearch() {
    const query = searchBox.value.trim();
    const token = ++searchToken;
    if (!query) { results.hidden = true; return; }
    let data;
    try { data = await getJSON("/api/search?" + q({ b, q: query })); } catch (error) { return; }
    if (token !== searchToken) return;
    put(results, h("div", { class: "muted", text: `${data.total} matches` + (data.total > data.results.length ? ` (first ${data.results.length})` : "") }),
      data.results.map((r) => h("a", { href: "#", class: "hit", "data-kind": r.kind, "data-id": r.id, onclick: (ev) => {
        ev.preventDefault(); results.hidden = true;
        if (r.kind === "thread") { selectThread(r.id); select("thread", r.id); } else select(r.kind, r.id);
      } }, h("span", { class: "kind", text: r.kind }), " ", h("span", { text: r.label }),
        r.snippet ? h("div", { class: "snippet muted", text: r.snippet }) : null,
        r.thread_id ? h("div", { class: "muted small", text: threadLabel(r.thread_id) }) : null)));
    results.hidden = false;
    results.dataset.query = query;
  }
  searchBox.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 200); });
  searchBox.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { clearTimeout(searchTimer); runSearch(); } if (ev.key === "Escape") results.hidden = true; });

  // -- load and follow

  async function loadOverview() {
    const o = await getJSON("/api/bundle?" + q({ b }));
    st.overview = o;
    if (!st.thread || !o.threads.some((t) => t.id === st.thread)) st.thread = o.root_thread_id || (o.threads[0] && o.threads[0].id) || null;
    document.body.dataset.signature = o.signature || "";
    renderHead();
    renderTree();
    renderTabs();
    if (!o.threads.length) { put(view, h("p", { class: "muted", text: "Nothing to show." })); return; }
    await renderView();
    if (document.body.dataset.ready !== "1") document.body.dataset.readyMs = String(performance.now());
    document.body.dataset.ready = "1";
  }

  loadOverview().then(() => { if (st.selected) select(st.selected.kind, st.selected.id); })
    .catch((error) => { put(view, h("div", { class: "error-banner", text: `cannot open ${b}: ${error.message}` })); });
  let reloading = false;
  teardown.push(liveEvents("/api/events?" + q({ b }), { changed: async (ev) => {
    let signature = "";
    try { signature = JSON.parse(ev.data); } catch (e) { signature = ""; }
    if (!st.overview || signature === document.body.dataset.signature || reloading) return;
    reloading = true;
    try { await loadOverview(); } catch (e) { /* the next change retries */ } finally { reloading = false; }
    if (signature !== document.body.dataset.signature) loadOverview().catch(() => {});
  } }));
}
