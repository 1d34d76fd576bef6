// The cvaeq explorer page: controls generated from the world (GET /api/world),
// questions to POST /api/query, answers drawn from its JSON and PNGs.
// The query text is the single truth: the controls write it; a typed query is
// sent as it is, and the answer (parsed and resolved by the server, the same
// code as `cvaeq query`) sets the controls. Plain JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
// What tests and the latency benchmark read: answers drawn, and per answer the
// milliseconds from the control's event to the last picture decoded.
window.cvaeq = { answers: 0, timings: [], lastError: null };

let world = null;
let evidenceMode = "factors"; // or "png" (a world without a renderer: its files' pictures, {row: N}, for "factors")
let uploaded = null;          // a data: URL of the uploaded PNG
let busy = false, again = false, startedAt = 0, pendingSince = 0;
let lastBody = null;          // the last question sent: the same one again is not re-asked (same seed, same answer)
let shownDag = null;          // the DAG's URL now drawn (the same interventions: no new picture)

function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// One control per factor: a select for a categorical factor, a slider over the
// grid for a numeric one, a slider over the interval for a continuous one;
// value() reads it as written in queries.
const short = (x) => String(Number(Number(x).toPrecision(4)));

function factorControl(prefix, f, onInput) {
  const wrap = el("label", { class: "control", "data-factor": f.name });
  wrap.append(el("span", { class: "name", text: f.name }));
  let input;
  if (f.continuous) {
    input = el("input", { id: `${prefix}-${f.name}`, type: "range", min: String(f.low), max: String(f.high),
                          step: String((f.high - f.low) / 240) });
    const out = el("output", { id: `${prefix}-${f.name}-value` });
    input.addEventListener("input", () => { out.textContent = short(input.value); });
    wrap.append(input, out);
  } else if (!f.numeric) {
    input = el("select", { id: `${prefix}-${f.name}` });
    f.values.forEach((v, i) => input.append(el("option", { value: String(i), text: v })));
    wrap.append(input);
  } else {
    input = el("input", { id: `${prefix}-${f.name}`, type: "range", min: "0", max: String(f.values.length - 1), step: "1" });
    const out = el("output", { id: `${prefix}-${f.name}-value` });
    input.addEventListener("input", () => { out.textContent = f.values[+input.value]; });
    wrap.append(input, out);
  }
  input.addEventListener("input", onInput);
  input.addEventListener("change", onInput);
  return wrap;
}

function setFactor(prefix, f, label) {
  const input = $(`${prefix}-${f.name}`);
  if (f.continuous && input) {
    input.value = String(label);
    const out = $(`${prefix}-${f.name}-value`);
    if (out) out.textContent = short(input.value);
    return;
  }
  const i = f.values.indexOf(String(label));
  if (i < 0 || !input) return;
  input.value = String(i);
  const out = $(`${prefix}-${f.name}-value`);
  if (out) out.textContent = f.values[i];
}

function getFactor(prefix, f) {
  if (f.continuous) return short($(`${prefix}-${f.name}`).value);
  return f.values[+$(`${prefix}-${f.name}`).value];
}

// ------------------------------------------------------------------ the query

function buildQuery() {
  const target = $("target").value;
  const conds = [];
  const dos = world.factors.filter((f) => $(`do-${f.name}`).checked).map((f) => `${f.name}=${getFactor("dov", f)}`);
  if (dos.length) conds.push(`do(${dos.join(", ")})`);
  if ($("observe").checked) conds.push("X=img");
  return conds.length ? `P(${target} | ${conds.join(", ")})` : `P(${target})`;
}

function controlsFromAnswer(a) {
  // the server's reading of the query sets the controls (the text stays as typed)
  if (a.targets && a.targets.length === 1 && [...$("target").options].some((o) => o.value === a.targets[0])) {
    $("target").value = a.targets[0];
  }
  for (const f of world.factors) {
    const on = Object.prototype.hasOwnProperty.call(a.interventions || {}, f.name);
    $(`do-${f.name}`).checked = on;
    if (on) setFactor("dov", f, a.interventions[f.name]);
  }
  $("observe").checked = !!a.observed_image;
}

function imageField(query) {
  if (!/\bimg\b/.test(query)) return null;
  if (evidenceMode === "png" && uploaded) return { png: uploaded };
  if (!world.has_renderer) return { row: +$("ev-row").value };  // nothing can be drawn: a picture of its files
  const factors = {};
  for (const f of world.factors) factors[f.name] = getFactor("ev", f);
  return { factors };
}

// ------------------------------------------------------------------ asking

function fromControls(event) {
  $("query").value = buildQuery();
  request(event);
}

function request(event) {
  const t = event && event.timeStamp ? event.timeStamp : performance.now();
  if (!pendingSince) pendingSince = t;
  if (busy) { again = true; return; }
  send();
}

async function send() {
  const query = $("query").value;
  const body = { query, image: imageField(query) };
  const samples = $("samples").value, seed = $("seed").value;
  if (samples !== "") body.samples = Number(samples);
  if (seed !== "") body.seed = Number(seed);
  const text = JSON.stringify(body);
  if (text === lastBody) { pendingSince = 0; return; } // e.g. a slider's "change" after its last "input"
  lastBody = text;
  busy = true;
  startedAt = pendingSince || performance.now();
  pendingSince = 0;
  try {
    const r = await fetch("/api/query", { method: "POST", headers: { "Content-Type": "application/json" }, body: text });
    const a = await r.json();
    if (!r.ok) { lastBody = null; showError(a.error || `error ${r.status}`); }
    else await showAnswer(a);
  } catch (e) {
    lastBody = null;
    showError(String(e));
  } finally {
    busy = false;
    if (again) { again = false; send(); }
  }
}

function showError(message) {
  window.cvaeq.lastError = message;
  $("error").textContent = `error: ${message}`;
  $("error").hidden = false;
  document.body.dataset.error = message;
}

function loadImage(img, url) {
  return new Promise((resolve) => {
    if (img.getAttribute("src") === url && img.complete) { resolve(); return; }
    img.onload = img.onerror = () => resolve();
    img.src = url;
  });
}

async function showPicture(name, url) {
  $(`fig-${name}`).hidden = !url;
  if (url) await loadImage($(`img-${name}`), url);
}

async function showAnswer(a) {
  $("error").hidden = true;
  delete document.body.dataset.error;
  window.cvaeq.lastError = null;
  controlsFromAnswer(a);
  const source = a.model ? `model ${a.model.split("/").pop()}` : `story ${a.story} (true tables)`;
  $("meta").textContent = `${a.query}   rung: ${a.rung}   particles: ${a.samples}   ESS: ${a.ess.toFixed(1)}   ${source}`;
  const warnings = a.warnings || [];  // e.g. evidence the model cannot explain (low ESS)
  $("warnings").textContent = warnings.map((w) => `warning: ${w}`).join("\n");
  $("warnings").hidden = !warnings.length;
  const images = a.images || {};
  const dag = a.dag === shownDag ? Promise.resolve()
    : fetch(a.dag).then((r) => r.text()).then((svg) => { $("dag").innerHTML = svg; shownDag = a.dag; });
  await Promise.all(["evidence", "truth", "mean", "samples"].map((n) => showPicture(n, images[n])));
  // binary worlds: IoU of the thresholded pictures; grey and colour worlds: mean |difference| per pixel and channel
  $("iou").textContent = !a.truth ? "" : a.truth.l1 !== undefined
    ? `(L1 to the model's: ${a.truth.l1.toFixed(4)})` : `(IoU with the model's: ${a.truth.iou.toFixed(3)})`;
  $("truth-note").textContent = a.truth_note || "";
  $("predicted").textContent = a.predicted
    ? "q(factors | X) reads the mean image as: " + Object.entries(a.predicted).map(([k, v]) => `${k}=${v}`).join(", ")
    : "";
  showNumbers(a);
  showBars(a.distribution || histogramBars(a.histogram) || a.factors || {}, a.truth ? a.truth.factors : null);
  await dag;
  const ms = performance.now() - startedAt;
  window.cvaeq.timings.push(ms);
  window.cvaeq.answers += 1;
  window.cvaeq.last = a;
  document.body.dataset.answers = String(window.cvaeq.answers);
}

function showNumbers(a) {
  const box = $("numbers");
  box.replaceChildren();
  const rows = [];
  for (const [k, v] of Object.entries(a.expectation || {})) rows.push([`E[${k}]`, v.toPrecision(6)]);
  if (a.probability !== undefined && a.probability !== null) rows.push(["probability", a.probability.toFixed(4)]);
  for (const [k, v] of Object.entries(a.mean || {})) rows.push([`mean ${k}`, v.map((x) => x.toFixed(3)).join(", ")]);
  for (const [k, v] of Object.entries(a.sd || {})) rows.push([`sd ${k}`, v.map((x) => x.toFixed(3)).join(", ")]);
  if (!rows.length) return;
  const table = el("table");
  for (const [k, v] of rows) table.append(el("tr", {}, [el("td", { text: k }), el("td", { text: v })]));
  box.append(table);
}

// One column chart per factor: the model's probabilities (blue) and, when
// known, the true counterfactual's (grey) beside them.
// a continuous target's histogram as bars, each bin labelled by its interval (null: none)
function histogramBars(hist) {
  if (!hist || !Object.keys(hist).length) return null;
  const out = {};
  for (const [name, h] of Object.entries(hist)) {
    out[name] = {};
    h.probabilities.forEach((p, k) => {
      out[name][`${+h.edges[k].toPrecision(4)}-${+h.edges[k + 1].toPrecision(4)}`] = p;
    });
  }
  return out;
}

function showBars(dists, truth) {
  const box = $("bars");
  box.replaceChildren();
  for (const [name, dist] of Object.entries(dists)) {
    // the world's order (an object's own keys would put "1" before "0.5")
    const known = world.factors.find((f) => f.name === name);
    const values = known && !known.continuous ? known.values.filter((v) => v in dist) : Object.keys(dist);
    const chart = el("div", { class: "chart" + (values.length <= 8 ? " few" : ""), "data-factor": name });
    chart.append(el("h3", { text: name }));
    const cols = el("div", { class: "columns" });
    const top = Math.max(...values.map((v) => Math.max(dist[v], truth && truth[name] ? truth[name][v] || 0 : 0)), 1e-9);
    for (const v of values) {
      const col = el("div", { class: "column", title: `${name}=${v}: ${dist[v].toFixed(4)}` +
        (truth && truth[name] ? `, true ${(truth[name][v] || 0).toFixed(4)}` : "") });
      const bar = el("div", { class: "bar", "data-value": v, "data-p": String(dist[v]) });
      bar.style.height = `${(100 * dist[v]) / top}%`;
      col.append(bar);
      if (truth && truth[name]) {
        const tb = el("div", { class: "bar truth" });
        tb.style.height = `${(100 * (truth[name][v] || 0)) / top}%`;
        col.append(tb);
      }
      cols.append(col);
    }
    chart.append(cols);
    const labels = el("div", { class: "labels" });
    if (values.length <= 8) values.forEach((v) => labels.append(el("span", { text: v })));
    else labels.append(el("span", { text: values[0] }), el("span", { text: values[values.length - 1] }));
    chart.append(labels);
    box.append(chart);
  }
  if (truth && Object.keys(dists).length) {
    box.append(el("p", { class: "legend hint" }, [el("span", { class: "model" }), "model", el("span", { class: "truth" }), "true counterfactual"]));
  }
}

// ------------------------------------------------------------------ the decoder view

function decode() {
  const params = new URLSearchParams();
  for (const f of world.factors) params.set(f.name, getFactor("dec", f));
  const z = [];
  for (let i = 0; i < world.latent_dim; i++) z.push($(`z-${i}`).value);
  params.set("z", z.join(","));
  $("img-decoded").src = `/api/decode.png?${params}`;
}

// ------------------------------------------------------------------ building the page

async function init() {
  world = await (await fetch("/api/world")).json();
  const model = world.model ? `model ${world.model.split("/").pop()}` : "no image model: the story's true tables (factor questions only)";
  $("about").textContent = `world ${world.world} · story ${world.story} · ${model}`;
  const ev = $("evidence-controls"), dov = $("do-controls");
  if (!world.has_renderer) rowControl(ev);
  for (const f of world.factors) {
    if (world.has_renderer) {
      ev.append(factorControl("ev", f, (e) => { evidenceMode = "factors"; showSource(); fromControls(e); }));
    }
    const box = el("input", { type: "checkbox", id: `do-${f.name}` });
    box.addEventListener("change", fromControls);
    const c = factorControl("dov", f, (e) => { $(`do-${f.name}`).checked = true; fromControls(e); });
    c.querySelector(".name").replaceWith(box, el("span", { class: "name", text: `do(${f.name})` }));
    dov.append(c);
    setFactor("ev", f, world.evidence[f.name]);
    setFactor("dov", f, world.evidence[f.name]);
  }
  const target = $("target");
  if (world.has_model) target.append(el("option", { value: "X", text: "X (the image)" }));
  for (const f of world.factors) target.append(el("option", { value: f.name, text: f.name }));
  target.addEventListener("change", fromControls);
  $("observe").addEventListener("change", fromControls);
  if (!world.has_model) { $("observe").disabled = true; $("upload").disabled = true; }
  $("samples").placeholder = "default";
  $("seed").value = String(world.seed);
  $("samples").addEventListener("change", (e) => request(e));
  $("seed").addEventListener("change", (e) => request(e));
  $("query-form").addEventListener("submit", (e) => { e.preventDefault(); request(e); });
  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => { uploaded = reader.result; evidenceMode = "png"; showSource(); request(); };
    reader.readAsDataURL(file);
  });
  $("use-factors").addEventListener("click", (e) => { evidenceMode = "factors"; showSource(); request(e); });
  if (world.has_model) {
    $("decoder-panel").hidden = false;
    const dc = $("decoder-controls"), zc = $("z-controls");
    for (const f of world.factors) {
      dc.append(factorControl("dec", f, decode));
      setFactor("dec", f, world.evidence[f.name]);
    }
    for (let i = 0; i < world.latent_dim; i++) {
      const wrap = el("label", { class: "control" }, [el("span", { class: "name", text: `Z[${i}]` })]);
      const input = el("input", { id: `z-${i}`, type: "range", min: "-3", max: "3", step: "0.1", value: "0" });
      const out = el("output", { id: `z-${i}-value`, text: "0" });
      input.addEventListener("input", () => { out.textContent = input.value; decode(); });
      wrap.append(input, out);
      zc.append(wrap);
    }
    $("decoder-from-evidence").addEventListener("click", () => {
      for (const f of world.factors) setFactor("dec", f, getFactor("ev", f));
      decode();
    });
    decode();
  }
  showSource();
  $("query").value = world.query;
  request();
}

// A world without a renderer: the evidence is a picture of its labelled files, by row.
function rowControl(ev) {
  const p = world.pictures;
  $("evidence-hint").textContent = p
    ? "Pick a picture of the world's labelled files by its row, or upload a PNG."
    : "Upload a PNG: this world draws no pictures and ships none.";
  if (!p) return;
  const wrap = el("label", { class: "control" }, [el("span", { class: "name", text: "picture" })]);
  const input = el("input", { id: "ev-row", type: "number", min: String(p.rows[0]), max: String(p.rows[1]),
                              step: "1", value: String(p.first) });
  input.addEventListener("change", (e) => { evidenceMode = "factors"; showSource(); fromControls(e); });
  wrap.append(input);
  ev.append(wrap);
  if (p.test_rows) ev.append(el("span", { class: "hint", text: `held out: ${p.test_rows[0]}-${p.test_rows[1]}` }));
}

function showSource() {
  $("use-factors").hidden = evidenceMode !== "png";
  $("use-factors").textContent = world.has_renderer ? "use the factors again" : "use the files' picture again";
  const uploadedNote = "img is the uploaded PNG (its factors are unknown: no true counterfactual).";
  if (!world.has_renderer) {  // said plainly: no picture can be drawn, so no true counterfactual
    const which = evidenceMode === "png" ? uploadedNote : `img is picture ${$("ev-row") ? $("ev-row").value : "?"} of the world's files.`;
    $("evidence-source").textContent = `${which} ${world.truth_note}.`;
    return;
  }
  $("evidence-source").textContent = evidenceMode === "png"
    ? uploadedNote
    : "img is the world's rendering of these factors (so the true counterfactual is known).";
}

window.addEventListener("DOMContentLoaded", () => { init().catch((e) => showError(String(e))); });
