// routellm's page: Try, Watch and Learn, talking only to this server's own API.
// Every call carries the bearer token typed above (kept in this tab's sessionStorage); a 401 says so on the page.
"use strict";

const TOKEN_KEY = "routellm-token";
const WATCH_EVERY_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = { strong: "#b4451f", weak: "#2467b3" };
const PALETTE = ["#2f7d4f", "#7a3fb0", "#c08a00", "#6b7280", "#b4451f", "#2467b3"];

const $ = (id) => document.getElementById(id);
const state = { info: null, touched: false, watchTimer: null, history: [], scoreSeq: 0, last: null };
// a value to start each objective kind from when the user picks it (the server's own when it is that kind)
const OBJECTIVE_START = { margin: "0.05", budget: "1", max_cost: "0.001", cost_weight: "100" };

// ---- formatting ------------------------------------------------------------------------------------------
const fmt = (x, digits = 3) => (x === null || x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(digits));
const pct = (x, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? "n/a" : `${(100 * x).toFixed(digits)}%`);
const usd = (x) => (x === null || x === undefined || !Number.isFinite(x) ? "n/a" : `$${x.toFixed(x < 0.01 ? 6 : 4)}`);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- the API ---------------------------------------------------------------------------------------------
class AuthError extends Error {}

function showAuthError(message) {
  const box = $("auth-error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options = { ...options, method: options.method || "POST", body: JSON.stringify(options.json) };
  }
  const response = await fetch(path, { ...options, headers, cache: "no-store" });
  if (response.status === 401) {
    showAuthError(
      token
        ? "401 Unauthorized: the server refused this token. Type one of its bearer tokens above."
        : "401 Unauthorized: this server has auth on. Type one of its bearer tokens above (those in the variable its --api-keys-env names; default ROUTELLM_SERVER_API_KEYS).",
    );
    throw new AuthError("401");
  }
  showAuthError("");
  const text = await response.text();
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") && text ? JSON.parse(text) : text;
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `${response.status} ${text}`;
    throw new Error(`${response.status}: ${message}`);
  }
  return { body, headers: response.headers };
}

// ---- views -----------------------------------------------------------------------------------------------
function currentView() {
  const name = location.hash.replace("#", "");
  return ["try", "watch", "learn"].includes(name) ? name : "try";
}

function showView() {
  const view = currentView();
  for (const name of ["try", "watch", "learn"]) {
    $(`view-${name}`).hidden = name !== view;
    document.querySelector(`nav a[data-view=${name}]`).classList.toggle("active", name === view);
  }
  clearInterval(state.watchTimer);
  state.watchTimer = null;
  if (!state.info) return;
  if (view === "watch") {
    refreshWatch();
    state.watchTimer = setInterval(refreshWatch, WATCH_EVERY_MS);
  } else if (view === "learn") {
    refreshLearn();
  }
}

async function loadInfo() {
  try {
    state.info = (await api("/ui/api/info")).body;
  } catch (error) {
    state.info = null;
    if (!(error instanceof AuthError)) showAuthError(`Cannot reach the server's API: ${error.message}`);
    return;
  }
  const info = state.info;
  const picker = $("router");
  picker.replaceChildren(...info.routers.map((r) => el("option", { value: r.name, text: `${r.name} (${r.router})` })));
  $("router-pick").hidden = info.routers.length < 2;
  $("server-line").textContent =
    `strong model: ${info.upstreams.strong} · weak model: ${info.upstreams.weak} · routers: ` +
    `${info.routers.map((r) => r.name).join(", ")} · auth ${info.auth ? "on" : "off"} · feedback store ` +
    `${info.feedback ? "on" : "off"} · worker ${info.worker}` +
    (info.auto ? ` · router-auto among ${info.auto.models.map((m) => m.name).join(", ")} (${info.auto.objective})` : "");
  $("route-pick").hidden = !info.auto;
  if (info.auto) {
    $("route-auto-label").textContent = `router-auto (${info.auto.models.length} models)`;
    $("objective-kind").options[0].textContent = `server default (${info.auto.objective})`;
  } else {
    document.querySelector("input[name=route][value=pair]").checked = true;
  }
  showRoute();
  resetSlider();
  showView();
}

// ---- Try: router-auto ------------------------------------------------------------------------------------
function routeKind() {
  const picked = document.querySelector("input[name=route]:checked");
  return state.info && state.info.auto && picked && picked.value === "auto" ? "auto" : "pair";
}

function showRoute() {
  const auto = routeKind() === "auto";
  $("pair-controls").hidden = auto;
  $("reset").hidden = auto;
  $("auto-controls").hidden = !auto;
  $("auto-intro").hidden = !auto;
  $("pair-intro").hidden = auto;
  const kind = $("objective-kind").value;
  $("objective-value-pick").hidden = !auto || kind === "server";
  $("objective-window-pick").hidden = !auto || kind !== "budget";
  if (auto) {
    $("preview").hidden = true;
    $("model-name").textContent = modelName();
  } else {
    updateSliderText(null);
    scheduleScore();
  }
}

function pickObjective() {
  const kind = $("objective-kind").value;
  const auto = state.info.auto;
  if (kind !== "server") {
    $("objective-value").value = auto.kind === kind ? String(auto.value) : OBJECTIVE_START[kind];
    $("objective-window").value = String(auto.kind === kind ? auto.window : auto.default_window);
  }
  showRoute();
}

function autoModelName() {
  // router-auto[-<kind>-<value>[-w<window>]][-cascade|-climb]: the objective as the server's model names write it
  const auto = state.info.auto;
  const cascade = $("cascade").checked ? ($("climb").checked ? "-climb" : "-cascade") : "";
  const kind = $("objective-kind").value;
  if (kind === "server") return `${auto.model}${cascade}`;
  const value = $("objective-value").value.trim() || OBJECTIVE_START[kind];
  const requests = $("objective-window").value.trim();
  const held = kind === "budget" && requests && Number(requests) !== auto.default_window ? `-w${requests}` : "";
  return `${auto.model}-${auto.name_kinds[kind]}-${value}${held}${cascade}`;
}

function escalationWhy(record) {
  // a climb (router-auto-climb) lists its rungs with no separate check answer; a cascade has one (role "check")
  const rungs = record.attempts.filter((a) => a.role !== "check");
  const climb = rungs.length >= 2 && !record.attempts.some((a) => a.role === "check" && !a.model.endsWith(" (verify)"));
  if (!climb) return `the cheap answer failed its check, so ${record.model} answered`;
  const judged = rungs.filter((a) => a.confidence !== null && a.confidence !== undefined);
  const last = judged[judged.length - 1];
  const threshold = last ? last.signals.escalation_threshold : undefined;
  const below = rungs[rungs.findIndex((a) => a.model === record.model) - 1];
  if (last && threshold !== undefined && last.confidence >= threshold && below && below.model === last.model) {
    return `${last.model}'s and ${record.model}'s answers agreed, so ${record.model}'s answer was served`;
  }
  return `no answer below passed its check, so ${record.model}, the top of the climb, answered`;
}

function ladderWhy(ladder) {
  const p = Object.fromEntries(ladder.models.map((m) => [m, ladder.predictions[m]]));
  const best = ladder.models.reduce((a, b) => (p[b] > p[a] ? b : a));
  const chosen = ladder.chosen;
  if (ladder.objective === "margin") {
    return `${chosen} is the cheapest expected model predicted within ${fmt(ladder.value)} of the best ` +
      `(${best}, ${pct(p[best])})`;
  }
  if (ladder.objective === "max_cost") {
    return ladder.expected_cost <= ladder.value
      ? `${chosen} is the best predicted model expected to cost at most ${usd(ladder.value)}`
      : `no model is expected to cost at most ${usd(ladder.value)}: the cheapest, ${chosen}`;
  }
  const weight = `P(answers well) − ${fmt(ladder.value, 1)} × expected cost in USD`;
  return ladder.budget !== null && ladder.budget !== undefined
    ? `the budget controller set the cost weight to ${fmt(ladder.value, 1)}: ${chosen} maximises ${weight}`
    : `${chosen} maximises ${weight}`;
}

function objectiveText(ladder, asked) {
  if (ladder.budget !== null && ladder.budget !== undefined) {
    return `budget ${usd(ladder.budget)} per 1,000 requests (${asked})`;
  }
  const names = { margin: "margin", max_cost: "max cost", cost_weight: "cost weight" };
  return `${names[ladder.objective] || ladder.objective} ${ladder.value} (${asked})`;
}

function probabilityBar(p, chosen) {
  const width = 160, height = 12;
  const bar = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "bar", role: "img",
    "aria-label": `P(answers well) ${pct(p)}` });
  bar.append(svg("rect", { x: 0, y: 0, width, height, rx: 2, fill: "#e8ebf0" }));
  bar.append(svg("rect", { x: 0, y: 0, width: width * Math.min(1, Math.max(0, p)), height, rx: 2,
    fill: chosen ? "#2f7d4f" : "#9aa3b2", "data-testid": "ladder-bar" }));
  return bar;
}

function renderLadder(record) {
  const ladder = record.ladder;
  const box = $("ladder");
  box.replaceChildren();
  if (!ladder) return;
  const role = (m) => [m === ladder.chosen ? "chosen" : "", m === record.model ? "answered" : "",
    m === ladder.strong && m !== ladder.chosen ? "the pair's strong side (escalation, fallback)" : ""]
    .filter(Boolean).join(", ");
  const rows = ladder.models.map((m) => el("tr", { "data-testid": "ladder-row", "data-model": m,
    class: m === ladder.chosen ? "chosen" : "" },
  el("td", { "data-testid": "ladder-model", text: m }),
  el("td", {}, probabilityBar(ladder.predictions[m], m === ladder.chosen),
    el("span", { "data-testid": "ladder-p", text: pct(ladder.predictions[m]) })),
  el("td", { "data-testid": "ladder-cost", text: usd(ladder.expected_costs[m]) }),
  el("td", { "data-testid": "ladder-role", text: role(m) })));
  const table = el("table", { "data-testid": "ladder-table" },
    el("thead", {}, el("tr", {}, ...["model", "P(answers well)", "expected cost", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows));
  box.append(el("h3", { text: "The models compared (cheapest expected first)" }), table);
}

function renderAutoFields(list, record, asked) {
  const ladder = record.ladder;
  field(list, "router", `${record.router} (predicts each model's success)`);
  field(list, "objective", objectiveText(ladder, asked), "objective");
  field(list, "chosen", el("span", { class: "chosen-model", text: ladder.chosen }), "chosen");
  field(list, "served by", record.model, "served");
  let why = ladderWhy(ladder);
  const failed = record.fallback_from || ladder.chosen;
  if (record.fallback) why += `; ${failed} failed (${record.fallback_error}), so ${record.model} answered`;
  else if (record.escalated) why += `; ${escalationWhy(record)}`;
  else if (record.model !== ladder.chosen && record.choice === "strong" && ladder.weak === ladder.chosen) {
    why += `; with one model above it to climb to, the call went straight to ${record.model}`;
  }
  field(list, "why", why, "why");
  if (ladder.budget !== null && ladder.budget !== undefined) {
    field(list, "spend", `${usd(ladder.spend)} per 1,000 requests (target ${usd(ladder.budget)}), over the recent ` +
      "requests", "spend");
    field(list, "cost weight", `${fmt(ladder.value, 1)} quality points per USD`, "cost-weight");
  }
  field(list, "expected cost", usd(ladder.expected_cost), "expected-cost");
}

// ---- Try -------------------------------------------------------------------------------------------------
function router() {
  const name = $("router").value || (state.info && state.info.routers[0].name);
  return state.info.routers.find((r) => r.name === name) || state.info.routers[0];
}

function mode() {
  return document.querySelector("input[name=mode]:checked").value;
}

function sliderSetting() {
  const value = Number($("slider").value);
  return mode() === "share" ? { strong_fraction: value / 100 } : { threshold: value };
}

function modelName() {
  // router-<router>[-<pre-route>][-cascade]: after -cascade a number would be the escalation's, not the pre-route's
  if (routeKind() === "auto") return autoModelName();
  const r = router();
  const cascade = $("cascade").checked ? "-cascade" : "";
  if (!state.touched) return `${r.model}${cascade}`;
  const value = Number($("slider").value);
  return mode() === "share" ? `${r.model}-${value}%${cascade}` : `${r.model}-${value}${cascade}`;
}

function setMode(name) {
  const calibrated = router().calibration.length > 0;
  if (name === "share" && !calibrated) name = "threshold";
  document.querySelector(`input[name=mode][value=${name}]`).checked = true;
  const slider = $("slider");
  if (name === "share") {
    Object.assign(slider, { min: 0, max: 100, step: 1 });
    $("slider-label").textContent = "strong share";
  } else {
    Object.assign(slider, { min: 0, max: 1, step: 0.001 });
    $("slider-label").textContent = "threshold";
  }
}

function resetSlider() {
  const r = router();
  state.touched = false;
  if (r.strong_fraction !== null && r.strong_fraction !== undefined) {
    setMode("share");
    $("slider").value = String(Math.round(r.strong_fraction * 100));
  } else if (r.share !== null && r.share !== undefined && Math.abs(r.share - 0.5) < 1e-9) {
    setMode("share");
    $("slider").value = "50";
  } else {
    setMode("threshold");
    $("slider").value = String(r.threshold);
  }
  updateSliderText(null);
  scheduleScore();
}

function updateSliderText(scored) {
  const r = router();
  const value = Number($("slider").value);
  let text;
  if (!state.touched) {
    text = `server default: threshold ${fmt(r.threshold)}` + (r.share !== null ? ` (~${pct(r.share, 0)} strong)` : "");
  } else if (mode() === "share") {
    text = `${value}% strong` + (scored ? ` = threshold ${fmt(scored.threshold)}` : "");
  } else {
    text = `threshold ${fmt(value)}` + (scored && scored.strong_fraction !== null ? ` (~${pct(scored.strong_fraction, 0)} strong)` : "");
  }
  $("slider-value").textContent = text;
  $("model-name").textContent = modelName();
}

function winRateBar(container, winRate, threshold, choice) {
  const width = 900, height = 46, x0 = 10, span = width - 20;
  const x = (v) => x0 + span * Math.min(1, Math.max(0, v));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
    "aria-label": `win rate ${fmt(winRate)} against threshold ${fmt(threshold)}` });
  chart.append(svg("rect", { x: x0, y: 8, width: span, height: 14, rx: 3, fill: "#e8ebf0" }));
  chart.append(svg("rect", { x: x0, y: 8, width: x(winRate) - x0, height: 14, rx: 3, fill: COLOURS[choice],
    "data-testid": "win-rate-fill" }));
  chart.append(svg("line", { x1: x(threshold), x2: x(threshold), y1: 2, y2: 28, stroke: "#1d2330", "stroke-width": 2,
    "data-testid": "threshold-mark" }));
  chart.append(svg("text", { x: x(threshold), y: 40, "text-anchor": "middle" }, `threshold ${fmt(threshold)}`));
  const inside = winRate > 0.15;
  chart.append(svg("text", { x: inside ? x(winRate) - 4 : x(winRate) + 4, y: 19, "text-anchor": inside ? "end" : "start",
    fill: inside ? "#fff" : "#1d2330" }, `win rate ${fmt(winRate)}`));
  chart.append(svg("text", { x: x0, y: 40 }, "0"));
  chart.append(svg("text", { x: x0 + span, y: 40, "text-anchor": "end" }, "1"));
  container.replaceChildren(chart);
}

let scoreTimer = null;
function scheduleScore() {
  clearTimeout(scoreTimer);
  scoreTimer = setTimeout(score, 80);
}

async function score() {
  const prompt = $("prompt").value;
  if (!state.info || !prompt.trim() || routeKind() === "auto") {
    $("preview").hidden = true;
    return;
  }
  const seq = ++state.scoreSeq;
  const ask = { prompt, router: router().name, ...(state.touched ? sliderSetting() : {}) };
  let scored;
  try {
    scored = (await api("/ui/api/score", { json: ask })).body;
  } catch (error) {
    if (seq === state.scoreSeq && !(error instanceof AuthError)) showTryError(error.message);
    return;
  }
  if (seq !== state.scoreSeq || routeKind() === "auto") return; // a newer slider position is on its way
  showTryError("");
  updateSliderText(scored);
  const preview = $("preview");
  preview.hidden = false;
  preview.dataset.choice = scored.choice;
  preview.dataset.winRate = String(scored.win_rate);
  preview.dataset.threshold = String(scored.threshold);
  winRateBar($("preview-bar"), scored.win_rate, scored.threshold, scored.choice);
  const side = el("span", { class: `side-${scored.choice}`, "data-testid": "preview-choice", text: scored.choice });
  const model = state.info.upstreams[scored.choice];
  $("preview-line").replaceChildren(
    `Win rate ${fmt(scored.win_rate)} ${scored.choice === "strong" ? "≥" : "<"} threshold ${fmt(scored.threshold)}: `,
    `this prompt would go to `, side, ` (${model}).`,
  );
}

function showTryError(message) {
  $("try-error").textContent = message;
  $("try-error").hidden = !message;
}

function field(list, name, value, testid) {
  list.append(el("dt", { text: name }));
  const dd = el("dd", testid ? { "data-testid": testid } : {});
  if (value instanceof Node) dd.append(value);
  else dd.textContent = value;
  list.append(dd);
}

function renderDecision(record, answerText, text, asked) {
  const box = $("decision");
  box.hidden = false;
  Object.assign(box.dataset, { choice: record.choice, served: record.served, model: record.model,
    winRate: String(record.win_rate), threshold: String(record.threshold), chosen: record.ladder ? record.ladder.chosen : "" });
  const list = $("decision-fields");
  list.replaceChildren();
  renderLadder(record);
  if (record.ladder) {
    renderAutoFields(list, record, asked);
    if (record.escalated !== undefined) field(list, "escalated", record.escalated ? "yes" : "no", "escalated");
    field(list, "cost", record.cost === null || record.cost === undefined ? "no price known" : usd(record.cost), "cost");
    field(list, "decision id", record.decision_id, "decision-id");
    $("decision-bar").replaceChildren();
    renderAttempts(record.attempts || []);
    $("answer").textContent = answerText;
    $("verdict-row").hidden = !state.info.feedback;
    $("verdict-said").textContent = "";
    return;
  }
  field(list, "routing text", text, "routing-text");
  field(list, "router", record.router);
  field(list, "win rate", fmt(record.win_rate), "win-rate");
  field(list, "threshold", fmt(record.threshold), "threshold");
  field(list, "choice", el("span", { class: `side-${record.choice}`, text: record.choice }), "choice");
  field(list, "served by", el("span", { class: `side-${record.served}`, text: `${record.model} (${record.served})` }), "served");
  let why = `win rate ${fmt(record.win_rate)} ${record.choice === "strong" ? "≥" : "<"} threshold ${fmt(record.threshold)}`;
  if (record.fallback) why += `; the ${record.choice} model failed (${record.fallback_error}), so the other one answered`;
  if (record.escalated) why += "; the cheap answer failed its check, so the strong model answered";
  field(list, "why", why, "why");
  if (record.fallback) field(list, "fallback from", `${record.fallback_from} (${record.fallback_error})`, "fallback");
  if (record.escalated !== undefined) field(list, "escalated", record.escalated ? "yes" : "no", "escalated");
  field(list, "cost", record.cost === null || record.cost === undefined ? "no price known" : usd(record.cost), "cost");
  field(list, "decision id", record.decision_id, "decision-id");
  winRateBar($("decision-bar"), record.win_rate, record.threshold, record.choice);
  renderAttempts(record.attempts || []);
  $("answer").textContent = answerText;
  $("verdict-row").hidden = !state.info.feedback;
  $("verdict-said").textContent = "";
}

function renderAttempts(attempts) {
  const box = $("attempts");
  box.replaceChildren();
  if (!attempts.length) return;
  box.append(el("h3", { text: "Attempts" }));
  attempts.forEach((a, i) => {
    const parts = [`${i + 1}. ${a.model} (${a.side}, ${a.role || "answer"})`, a.kept ? "kept" : "not kept"];
    if (a.confidence !== null && a.confidence !== undefined) parts.push(`confidence ${fmt(a.confidence)}`);
    if (a.error) parts.push(`failed: ${a.error}`);
    if (a.input_tokens !== null && a.input_tokens !== undefined) parts.push(`${a.input_tokens} in / ${a.output_tokens ?? "?"} out tokens`);
    parts.push(a.cost === null || a.cost === undefined ? "cost n/a" : `cost ${usd(a.cost)}`);
    const signals = Object.entries(a.signals || {}).map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
    const row = el("div", { class: `attempt${a.kept ? " kept" : ""}`, "data-testid": "attempt" }, parts.join(" · "));
    if (signals) row.append(el("div", { class: "muted", text: `signals: ${signals}` }));
    box.append(row);
  });
}

async function tryPrompt(event) {
  event.preventDefault();
  const prompt = $("prompt").value;
  if (!prompt.trim()) {
    showTryError("Type a prompt first.");
    return;
  }
  $("submit").disabled = true;
  try {
    const asked = modelName();
    const { body } = await api("/v1/chat/completions", {
      json: { model: asked, messages: [{ role: "user", content: prompt }] },
    });
    showTryError("");
    if (body.routellm.ladder) {
      const answer = body.choices && body.choices[0] && body.choices[0].message ? body.choices[0].message.content : "";
      state.last = body.routellm;
      renderDecision(body.routellm, answer || "(no text)", null, asked);
      return;
    }
    const scored = (await api("/ui/api/score", { json: { prompt, router: router().name, threshold: body.routellm.threshold } })).body;
    const answer = body.choices && body.choices[0] && body.choices[0].message ? body.choices[0].message.content : "";
    state.last = body.routellm;
    renderDecision(body.routellm, answer || "(no text)", scored.text);
  } catch (error) {
    if (!(error instanceof AuthError)) showTryError(error.message);
  } finally {
    $("submit").disabled = false;
  }
}

async function sendVerdict(verdict) {
  if (!state.last) return;
  try {
    const { body } = await api("/v1/feedback", { json: { decision_id: state.last.decision_id, verdict } });
    $("verdict-said").textContent = body.label_id === null ? `noted "${verdict}" (no label: nothing to compare)` : `stored as label ${body.label_id}`;
  } catch (error) {
    if (!(error instanceof AuthError)) $("verdict-said").textContent = error.message;
  }
}

// ---- Watch: the Prometheus text format, read by metric name ----------------------------------------------
function parseMetrics(text) {
  const samples = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const match = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels = {};
    if (match[3]) {
      for (const pair of match[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[pair[1]] = pair[2].replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
      }
    }
    const value = match[4] === "+Inf" ? Infinity : match[4] === "-Inf" ? -Infinity : Number(match[4]);
    samples.push({ name: match[1], labels, value });
  }
  return samples;
}

function total(samples, name, where = {}) {
  let sum = 0, seen = false;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(where).some(([k, v]) => (typeof v === "function" ? !v(s.labels[k]) : s.labels[k] !== v))) continue;
    sum += s.value;
    seen = true;
  }
  return seen ? sum : null;
}

function present(samples, name) {
  return samples.some((s) => s.name === name) || null;
}

function quantile(samples, name, q) {
  const buckets = samples.filter((s) => s.name === `${name}_bucket`)
    .map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value }))
    .sort((a, b) => a.le - b.le);
  const count = total(samples, `${name}_count`);
  if (!count || !buckets.length) return null;
  const bound = buckets.find((b) => b.count >= q * count);
  return bound ? bound.le : null;
}

function watchFigures(samples) {
  const requests = total(samples, "routellm_requests_total");
  const failed = total(samples, "routellm_requests_total", { status: (s) => !/^2/.test(s) });
  const decisions = total(samples, "routellm_decisions_total");
  const fallbacks = total(samples, "routellm_fallbacks_total");
  const escalatedNames = present(samples, "routellm_escalations_total");
  const escalated = total(samples, "routellm_escalations_total", { escalated: "true" });
  const checked = total(samples, "routellm_escalations_total");
  const cost = total(samples, "routellm_cost_usd_total");
  const alwaysStrong = total(samples, "routellm_cost_usd_always_strong_total");
  const latencyCount = total(samples, "routellm_routing_latency_seconds_count");
  const latencySum = total(samples, "routellm_routing_latency_seconds_sum");
  return {
    requests: requests ?? 0,
    failed: failed ?? 0,
    strong: total(samples, "routellm_decisions_total", { choice: "strong" }) ?? 0,
    weak: total(samples, "routellm_decisions_total", { choice: "weak" }) ?? 0,
    decisions: decisions ?? 0,
    fallbacks: fallbacks ?? 0,
    escalationRate: escalatedNames && checked ? (escalated ?? 0) / checked : null,
    escalationsReported: Boolean(escalatedNames),
    cost, alwaysStrong,
    latencyMean: latencyCount ? latencySum / latencyCount : null,
    latencyP50: quantile(samples, "routellm_routing_latency_seconds", 0.5),
    latencyP95: quantile(samples, "routellm_routing_latency_seconds", 0.95),
    calls: {
      strong: total(samples, "routellm_upstream_calls_total", { side: "strong" }) ?? 0,
      weak: total(samples, "routellm_upstream_calls_total", { side: "weak" }) ?? 0,
    },
  };
}

function tile(label, value, sub, testid) {
  return el("div", { class: "tile" }, el("div", { class: "label", text: label }),
    el("div", { class: "value", "data-testid": testid, text: value }), el("div", { class: "sub", text: sub || "" }));
}

function lineChart(container, series, names, colours = COLOURS) {
  const width = 480, height = 180, left = 36, right = 120, top = 10, bottom = 24;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img" });
  const points = state.history;
  const t0 = points.length ? points[0].t : 0;
  const tMax = Math.max(1, points.length ? points[points.length - 1].t - t0 : 1);
  const yMax = Math.max(1, ...points.flatMap((p) => names.map((n) => series(p)[n] || 0)));
  const X = (t) => left + (width - left - right) * ((t - t0) / tMax);
  const Y = (v) => top + (height - top - bottom) * (1 - v / yMax);
  chart.append(svg("line", { x1: left, x2: width - right, y1: Y(0), y2: Y(0), stroke: "#d9dde5" }));
  chart.append(svg("text", { x: left - 4, y: Y(yMax) + 4, "text-anchor": "end" }, String(Math.round(yMax))));
  chart.append(svg("text", { x: left - 4, y: Y(0) + 4, "text-anchor": "end" }, "0"));
  chart.append(svg("text", { x: left, y: height - 6 }, "since this page opened"));
  chart.append(svg("text", { x: width - right, y: height - 6, "text-anchor": "end" }, `${Math.round(tMax)} s`));
  names.forEach((name, i) => {
    const colour = colours[name] || PALETTE[i % PALETTE.length];
    const d = points.map((p, j) => `${j ? "L" : "M"}${X(p.t).toFixed(1)},${Y(series(p)[name] || 0).toFixed(1)}`).join(" ");
    if (d) chart.append(svg("path", { d, fill: "none", stroke: colour, "stroke-width": 2 }));
    for (const p of points) chart.append(svg("circle", { cx: X(p.t), cy: Y(series(p)[name] || 0), r: 2.5, fill: colour }));
    const last = points.length ? series(points[points.length - 1])[name] || 0 : 0;
    chart.append(svg("text", { x: width - right + 6, y: Y(last) + 4, fill: colour }, `${name}: ${last}`));
  });
  container.replaceChildren(chart);
}

async function refreshWatch() {
  let text, recent;
  try {
    text = (await api("/metrics")).body;
    recent = (await api("/ui/api/recent")).body;
  } catch (error) {
    if (!(error instanceof AuthError)) $("scraped").textContent = `cannot read /metrics: ${error.message}`;
    return;
  }
  const samples = parseMetrics(text);
  const f = watchFigures(samples);
  const info = state.info;
  state.history.push({ t: Date.now() / 1000, f });
  if (state.history.length > 150) state.history.shift();
  $("scraped").textContent = `read at ${new Date().toLocaleTimeString()}`;
  const saved = f.cost !== null && f.alwaysStrong ? 1 - f.cost / f.alwaysStrong : null;
  $("tiles").replaceChildren(
    tile("chat requests", String(f.requests), `${f.failed} answered with an error`, "watch-requests"),
    tile("routed to strong", String(f.strong), f.decisions ? `${pct(f.strong / f.decisions)} of decisions` : "", "watch-strong"),
    tile("routed to weak", String(f.weak), f.decisions ? `${pct(f.weak / f.decisions)} of decisions` : "", "watch-weak"),
    tile("escalation rate", f.escalationsReported ? pct(f.escalationRate) : "n/a",
      f.escalationsReported ? "checked answers sent on to strong" : "no escalation check reported", "watch-escalation"),
    tile("fallback rate", f.decisions ? pct(f.fallbacks / f.decisions) : "n/a", `${f.fallbacks} fallbacks`, "watch-fallback"),
    tile("error rate", f.requests ? pct(f.failed / f.requests) : "n/a", "chat requests not answered 2xx", "watch-errors"),
    tile("cost", f.cost === null ? "n/a" : usd(f.cost),
      f.alwaysStrong ? `always-strong: ${usd(f.alwaysStrong)} (${pct(saved)} saved)` : "no prices reported", "watch-cost"),
    tile("routing latency", f.latencyMean === null ? "n/a" : `${(1000 * f.latencyMean).toFixed(2)} ms`,
      f.latencyP95 === null ? "mean" : `mean · p50 ≤ ${1000 * f.latencyP50} ms · p95 ≤ ${1000 * f.latencyP95} ms`, "watch-latency"),
  );
  lineChart($("chart-choice"), (p) => ({ strong: p.f.strong, weak: p.f.weak }), ["strong", "weak"]);
  if (info.auto) {
    watchNamedModels(samples, info);
    renderRecent(recent);
    return;
  }
  const models = { [info.upstreams.strong]: "strong", [info.upstreams.weak]: "weak" };
  lineChart($("chart-model"), (p) => ({ [info.upstreams.strong]: p.f.calls.strong, [info.upstreams.weak]: p.f.calls.weak }),
    Object.keys(models), { [info.upstreams.strong]: COLOURS.strong, [info.upstreams.weak]: COLOURS.weak });
  const rows = Object.entries(models).map(([model, side]) => {
    const by = (outcome) => String(total(samples, "routellm_upstream_calls_total", { side, outcome }) ?? 0);
    const cost = total(samples, "routellm_cost_usd_total", { model });
    return el("tr", { "data-testid": `model-${side}` }, el("td", { text: model }), el("td", { text: side }),
      el("td", { "data-testid": `calls-${side}-ok`, text: by("ok") }), el("td", { text: by("error") }),
      el("td", { text: by("cancelled") }), el("td", { text: cost === null ? "n/a" : usd(cost) }));
  });
  $("models").tBodies[0].replaceChildren(...rows);
  renderRecent(recent);
}

// With named models (--model): every one of them, and the strong/weak upstreams when they are others.
function watchNamedModels(samples, info) {
  const named = info.auto.models;
  const rows = named.map((m) => ({ ...m, sides: [] }));
  for (const side of ["strong", "weak"]) {
    const found = rows.find((r) => r.name === info.upstreams[side]);
    if (found) found.sides.push(side);
    else rows.push({ name: info.upstreams[side], sides: [side] });
  }
  const answers = (name) => total(samples, "routellm_ladder_requests_total", { model: name });
  state.history[state.history.length - 1].answers = Object.fromEntries(named.map((m) => [m.name, answers(m.name) ?? 0]));
  $("chart-model-title").textContent = "router-auto answers by model";
  lineChart($("chart-model"), (p) => p.answers || {}, named.map((m) => m.name), {});
  const price = (r) => (r.input_usd_per_m === undefined ? "n/a" : `${r.input_usd_per_m} / ${r.output_usd_per_m}`);
  $("models").tHead.replaceChildren(el("tr", {}, ...["model", "side", "USD per 1M tokens in / out", "router-auto answers",
    "cost (USD)"].map((h) => el("th", { text: h }))));
  $("models").tBodies[0].replaceChildren(...rows.map((r) => {
    const role = [...(r.input_usd_per_m === undefined ? [] : ["named"]), ...r.sides].join(", ");
    const cost = total(samples, "routellm_cost_usd_total", { model: r.name });
    const count = r.input_usd_per_m === undefined ? "n/a" : String(answers(r.name) ?? 0);
    return el("tr", { "data-testid": "model-row", "data-model": r.name }, el("td", { text: r.name }),
      el("td", { text: role }), el("td", { text: price(r) }), el("td", { "data-testid": "model-answers", text: count }),
      el("td", { "data-testid": "model-cost", text: cost === null ? "n/a" : usd(cost) }));
  }));
}

function answeredBy(d) {
  if (d.served_model === undefined) return "not answered here";
  const how = [d.escalated ? "escalated" : "", d.fallback ? "fallback" : ""].filter(Boolean).join(", ");
  return how ? `${d.served_model} (${how})` : d.served_model;
}

function renderRecent(recent) {
  const heads = ["when", "router", "win rate", "threshold", "choice", "answered by", "cost",
    ...(recent.log_prompts ? ["routing text"] : [])];
  $("recent").tHead.replaceChildren(el("tr", {}, ...heads.map((h) => el("th", { text: h }))));
  $("recent-note").textContent = recent.log_prompts
    ? `(worker ${recent.worker}; routing texts shown: the server runs with --log-prompts)`
    : `(worker ${recent.worker}; prompt text hidden: start the server with --log-prompts to show it)`;
  $("recent").tBodies[0].replaceChildren(...recent.decisions.slice(0, 12).map((d) => el("tr", {},
    el("td", { text: `${d.age_s.toFixed(0)} s ago` }), el("td", { text: d.router }), el("td", { text: fmt(d.win_rate) }),
    el("td", { text: fmt(d.threshold) }), el("td", { class: `side-${d.choice}`, text: d.model || d.choice }),
    el("td", { text: answeredBy(d) }), el("td", { text: d.served_model === undefined ? "" : usd(d.cost) }),
    ...(recent.log_prompts ? [el("td", { text: d.text || "" })] : []))));
}

// ---- Learn -----------------------------------------------------------------------------------------------
function fmtInterval(i, percent) {
  const one = (x) => (x === null ? "never" : percent ? `${(100 * x).toFixed(0)}%` : x.toFixed(3));
  return `${one(i.value)} [${one(i.low)}, ${one(i.high)}]`;
}

function curveChart(container, report) {
  const width = 640, height = 300, left = 44, right = 16, top = 12, bottom = 36;
  const qs = report.rows.flatMap((r) => r.curve.map((p) => p[1]));
  const yMin = Math.min(report.q_weak, ...qs), yMax = Math.max(report.q_strong, ...qs);
  const pad = (yMax - yMin) * 0.05 || 0.05;
  const X = (x) => left + (width - left - right) * x;
  const Y = (y) => top + (height - top - bottom) * (1 - (y - (yMin - pad)) / (yMax - yMin + 2 * pad));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img" });
  for (const [q, name] of [[report.q_strong, "always strong"], [report.q_weak, "always weak"]]) {
    chart.append(svg("line", { x1: X(0), x2: X(1), y1: Y(q), y2: Y(q), stroke: "#d9dde5", "stroke-dasharray": "4 3" }));
    chart.append(svg("text", { x: X(1), y: Y(q) - 3, "text-anchor": "end" }, `${name} ${q.toFixed(3)}`));
  }
  chart.append(svg("line", { x1: X(0), x2: X(1), y1: Y(yMin - pad), y2: Y(yMin - pad), stroke: "#9aa3b2" }));
  chart.append(svg("text", { x: X(0.5), y: height - 4, "text-anchor": "middle" }, "share of prompts sent to the strong model"));
  for (const x of [0, 0.5, 1]) chart.append(svg("text", { x: X(x), y: height - 20, "text-anchor": "middle" }, `${x * 100}%`));
  const gap = report.q_strong - report.q_weak;
  const baseline = (row) => row.name === "random" || row.name === "length";
  [...report.rows.entries()].reverse().forEach(([i, row]) => {
    const colour = PALETTE[i % PALETTE.length];
    const d = row.curve.map((p, j) => `${j ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    chart.append(svg("path", { d, fill: "none", stroke: colour, "stroke-width": baseline(row) ? 1.5 : 2.5,
      "stroke-dasharray": baseline(row) ? "6 4" : "none", "data-testid": "curve" }));
    [[row.cpt50, 0.5], [row.cpt80, 0.8]].forEach(([cpt, level]) => {
      if (cpt.value === null) return;
      const y = Y(report.q_weak + level * gap) + (i - report.rows.length / 2) * 4;
      const lo = cpt.low ?? cpt.value, hi = cpt.high ?? 1;
      chart.append(svg("line", { x1: X(lo), x2: X(hi), y1: y, y2: y, stroke: colour, "stroke-width": 1.5 }));
      chart.append(svg("circle", { cx: X(cpt.value), cy: y, r: 3, fill: colour }));
    });
    chart.append(svg("text", { x: left + 8, y: top + 12 + 14 * i, fill: colour },
      `${row.name}: APGR ${fmtInterval(row.apgr, false)}`));
  });
  container.replaceChildren(chart);
}

async function refreshLearn() {
  let data;
  try {
    data = (await api(`/ui/api/learn?router=${encodeURIComponent(router().name)}`)).body;
  } catch (error) {
    if (!(error instanceof AuthError)) {
      $("learn-off").hidden = false;
      $("learn-off").textContent = error.message;
    }
    return;
  }
  $("learn-off").hidden = data.enabled;
  $("learn-on").hidden = !data.enabled;
  if (!data.enabled) {
    $("learn-off").replaceChildren(el("h2", { text: "No feedback store" }), el("p", { "data-testid": "learn-off", text: data.message }));
    return;
  }
  $("learn-tiles").replaceChildren(
    tile("labels", String(data.labels), Object.entries(data.by_source).map(([k, v]) => `${k}: ${v}`).join(", "), "learn-labels"),
    tile("recorded decisions", String(data.decisions), "every routed request", "learn-decisions"),
  );
  const report = data.report;
  $("learn-problem").hidden = !data.problem;
  $("learn-problem").textContent = data.problem ? `No report yet: ${data.problem}` : "";
  $("learn-verdict").textContent = report ? report.verdict : "";
  $("learn-notes").textContent = report
    ? `${report.n_prompts} labelled prompts (${report.n_labels} labels), strong ${report.strong_model} vs weak ` +
      `${report.weak_model}; ${report.quality}. ${report.notes.join(" ")}`
    : "";
  $("learn-rows").tBodies[0].replaceChildren(...(report ? report.rows : []).map((r) => el("tr", {},
    el("td", { text: r.name }), el("td", { text: fmtInterval(r.apgr, false) }),
    el("td", { text: fmtInterval(r.cpt50, true) }), el("td", { text: fmtInterval(r.cpt80, true) }))));
  if (report && report.rows.length) curveChart($("learn-curve"), report);
  else $("learn-curve").replaceChildren();
  $("retrain").replaceChildren(...data.retrain.map((c, i) => el("li", {},
    el("code", { text: c }), el("span", { class: "muted", text: [" see where you start", " warm-start on your labels", " compare"][i] || "" }))));
}

// ---- wiring ----------------------------------------------------------------------------------------------
function start() {
  $("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    loadInfo();
  });
  $("try-form").addEventListener("submit", tryPrompt);
  $("prompt").addEventListener("input", scheduleScore);
  $("slider").addEventListener("input", () => {
    state.touched = true;
    updateSliderText(null);
    scheduleScore();
  });
  for (const radio of document.querySelectorAll("input[name=mode]")) {
    radio.addEventListener("change", () => {
      state.touched = true;
      const r = router();
      setMode(radio.value);
      $("slider").value = mode() === "share" ? String(Math.round(100 * (r.share ?? 0.5))) : String(r.threshold);
      updateSliderText(null);
      scheduleScore();
    });
  }
  $("reset").addEventListener("click", resetSlider);
  $("cascade").addEventListener("change", () => { $("model-name").textContent = modelName(); });
  $("climb").addEventListener("change", () => { $("model-name").textContent = modelName(); });
  for (const radio of document.querySelectorAll("input[name=route]")) radio.addEventListener("change", showRoute);
  $("objective-kind").addEventListener("change", pickObjective);
  for (const id of ["objective-value", "objective-window"]) {
    $(id).addEventListener("input", () => { $("model-name").textContent = modelName(); });
  }
  $("router").addEventListener("change", () => { resetSlider(); if (currentView() === "learn") refreshLearn(); });
  for (const button of document.querySelectorAll("[data-verdict]")) {
    button.addEventListener("click", () => sendVerdict(button.dataset.verdict));
  }
  window.addEventListener("hashchange", showView);
  showView();
  loadInfo();
}

document.addEventListener("DOMContentLoaded", start);
