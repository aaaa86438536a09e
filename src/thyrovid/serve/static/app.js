// thyrovid workstation: viewer, boxes on key frames, prediction with Grad-CAM, annotate and
// reading modes. Plain JavaScript, no build step, no CDN: talks only to the local server's /api.
"use strict";

const $ = (id) => document.getElementById(id);
const S = {
  info: null, mode: "predict", video: null, frame: 0,
  keys: new Map(),        // 0-based frame -> [x0, y0, x1, y1] in pixels of the frame
  drag: null, playing: null, pred: null, predKeys: "",
  images: new Map(), cams: new Map(), scale: 1,
  study: null, studyCase: null,
};
const MAX_IMAGES = 600;

// ------------------------------------------------------------------ helpers
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function status(message, ok) {
  $("status").textContent = message || "";
  $("status").className = ok ? "ok" : "";
}
async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) body = await response.json();
  if (!response.ok) throw new Error((body && body.error) || `HTTP ${response.status}`);
  return body;
}
const postJSON = (path, body) => api(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});
const f4 = (x) => Number(x).toFixed(4);
const frameText = (i) => `frame ${i + 1} (index ${i})`;

// ------------------------------------------------------------------ the run
async function loadInfo() {
  const info = await api("api/info");
  S.info = info;
  const p = info.preprocessing;
  const thr = info.threshold === null ? "no threshold (run thyrovid evaluate)"
    : `threshold ${f4(info.threshold)} (${info.threshold_source})`;
  $("run").textContent = `run \u201c${info.run}\u201d: ${info.model.arch}, ${info.model.dims}D; clips of ` +
    `${p.frames} frames, ${p.size} px, box \u00d7${p.expand}; ${thr}`;
  $("expand").textContent = p.expand;
  document.querySelector('[data-mode="annotate"]').hidden = !info.modes.annotate;
  document.querySelector('[data-mode="study"]').hidden = !info.modes.study;
  if (info.modes.root) {
    $("root-open").hidden = false;
    const list = await api("api/root");
    const select = $("root-list");
    select.replaceChildren(...list.videos.map((v) => { const o = el("option", v); o.value = v; return o; }));
    if (list.truncated) select.appendChild(el("option", "(list truncated)"));
  }
  updateKeys();
}

// ------------------------------------------------------------------ opening a video
async function showVideo(video, keep) {
  stop();
  S.video = video;
  S.images.clear(); S.cams.clear();
  if (!keep) { S.keys.clear(); S.pred = null; $("result").replaceChildren(); }
  const scale = Math.min(840 / video.width, 600 / video.height);
  S.scale = scale;
  const canvas = $("view");
  canvas.width = Math.round(video.width * scale);
  canvas.height = Math.round(video.height * scale);
  $("empty").hidden = true;
  $("scrub").max = video.n_frames - 1;
  goto(0);
  updateKeys();
  if (S.mode === "annotate") await loadSaved();
}
async function openUpload() {
  const file = $("file").files[0];
  if (!file) return;
  const body = new FormData();
  body.append("file", file);
  status("uploading\u2026", true);
  try {
    const video = await api("api/videos", { method: "POST", body });
    await showVideo(video);
    status(`opened the uploaded video: ${video.n_frames} frames, ${video.width}\u00d7${video.height}`, true);
  } catch (err) { status(err.message); }
}
async function openRoot() {
  const path = $("root-list").value;
  try {
    const video = await postJSON("api/videos/open", { path });
    await showVideo(video);
    status(`opened ${video.name}: ${video.n_frames} frames, ${video.width}\u00d7${video.height}`, true);
  } catch (err) { status(err.message); }
}

// ------------------------------------------------------------------ frames
function image(i) {
  let img = S.images.get(i);
  if (!img) {
    if (S.images.size > MAX_IMAGES) S.images.clear();
    img = new Image();
    img.onload = () => { if (i === S.frame) draw(); };
    img.src = `api/videos/${S.video.id}/frames/${i}.png`;
    S.images.set(i, img);
  }
  return img;
}
function camImage(k, i) {
  const key = `${S.pred.id}/${k}/${i}`;
  let img = S.cams.get(key);
  if (!img) {
    img = new Image();
    img.onload = () => { if (i === S.frame) draw(); };
    img.src = `api/predictions/${S.pred.id}/cam/${k}/${i}.png`;
    S.cams.set(key, img);
  }
  return img;
}
function goto(i) {
  if (!S.video) return;
  S.frame = Math.max(0, Math.min(S.video.n_frames - 1, i));
  $("scrub").value = S.frame;
  $("frame-label").textContent = `frame ${S.frame + 1} / ${S.video.n_frames}  (index ${S.frame})`;
  for (let j = 1; j <= 3; j++) if (S.frame + j < S.video.n_frames) image(S.frame + j);
  draw();
  markCurrent();
}
function expandBox(b) {
  const e = S.info.preprocessing.expand;
  const r = S.video.region || [0, 0, S.video.width, S.video.height];
  const bounds = [Math.max(r[0], 0), Math.max(r[1], 0), Math.min(r[2], S.video.width), Math.min(r[3], S.video.height)];
  const cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2, hw = (b[2] - b[0]) * e / 2, hh = (b[3] - b[1]) * e / 2;
  return [Math.max(bounds[0], Math.floor(cx - hw + 0.5)), Math.max(bounds[1], Math.floor(cy - hh + 0.5)),
          Math.min(bounds[2], Math.floor(cx + hw + 0.5)), Math.min(bounds[3], Math.floor(cy + hh + 0.5))];
}
function camClips() {
  if (!S.pred || !$("cam-on").checked) return [];
  return S.pred.clips.map((c, k) => [c, k]).filter(([c]) => c.has_cam && c.indices.includes(S.frame));
}
function draw() {
  if (!S.video) return;
  const canvas = $("view"), ctx = canvas.getContext("2d"), s = S.scale;
  const img = image(S.frame);
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = s < 3;
  if (img.complete && img.naturalWidth) ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  for (const [c, k] of camClips()) {
    const heat = camImage(k, S.frame);
    if (heat.complete && heat.naturalWidth) {
      ctx.globalAlpha = $("cam-alpha").value / 100;
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(heat, c.roi[0] * s, c.roi[1] * s, (c.roi[2] - c.roi[0]) * s, (c.roi[3] - c.roi[1]) * s);
      ctx.globalAlpha = 1;
    }
  }
  const box = S.drag && S.drag.box ? S.drag.box : S.keys.get(S.frame);
  if (box) {
    const roi = expandBox(box);
    ctx.setLineDash([6, 4]); ctx.lineWidth = 2; ctx.strokeStyle = "#ffd000";
    ctx.strokeRect(roi[0] * s, roi[1] * s, (roi[2] - roi[0]) * s, (roi[3] - roi[1]) * s);
    ctx.setLineDash([]); ctx.lineWidth = 2.5; ctx.strokeStyle = "#00e5ff";
    ctx.strokeRect(box[0] * s, box[1] * s, (box[2] - box[0]) * s, (box[3] - box[1]) * s);
    ctx.fillStyle = "#00e5ff"; ctx.font = "bold 14px system-ui, sans-serif";
    ctx.fillText(`key frame ${S.frame + 1}`, box[0] * s + 2, Math.max(14, box[1] * s - 6));
  }
  const note = $("cam-note");
  if (S.pred && S.pred.clips.some((c) => c.has_cam)) {
    note.textContent = camClips().length ? "" : "no heatmap on this frame (outside every clip's window)";
  }
}

// ------------------------------------------------------------------ boxes with the mouse
function toFrame(event) {
  const r = $("view").getBoundingClientRect();
  const x = (event.clientX - r.left) * (S.video.width / r.width);
  const y = (event.clientY - r.top) * (S.video.height / r.height);
  return [Math.max(0, Math.min(S.video.width, x)), Math.max(0, Math.min(S.video.height, y))];
}
function editable() { return S.video && S.mode !== "study"; }
function onDown(event) {
  if (!editable()) return;
  const [x, y] = toFrame(event);
  const box = S.keys.get(S.frame);
  if (box && x >= box[0] && x <= box[2] && y >= box[1] && y <= box[3]) {
    S.drag = { kind: "move", start: [x, y], orig: box.slice(), box: box.slice() };
  } else {
    if (!box && S.keys.size >= S.info.max_key_frames) {
      status(`at most ${S.info.max_key_frames} key frames: delete one first`);
      return;
    }
    S.drag = { kind: "new", start: [x, y], box: null };
  }
  $("view").focus();
  event.preventDefault();
}
function onMove(event) {
  if (!S.drag) return;
  const [x, y] = toFrame(event);
  const d = S.drag, W = S.video.width, H = S.video.height;
  if (d.kind === "new") {
    d.box = [Math.min(d.start[0], x), Math.min(d.start[1], y), Math.max(d.start[0], x), Math.max(d.start[1], y)];
  } else {
    const w = d.orig[2] - d.orig[0], h = d.orig[3] - d.orig[1];
    const x0 = Math.max(0, Math.min(W - w, d.orig[0] + x - d.start[0]));
    const y0 = Math.max(0, Math.min(H - h, d.orig[1] + y - d.start[1]));
    d.box = [x0, y0, x0 + w, y0 + h];
  }
  draw();
}
function onUp() {
  const d = S.drag;
  S.drag = null;
  if (!d || !d.box) { draw(); return; }
  const b = d.box.map(Math.round);
  if (b[2] - b[0] >= 2 && b[3] - b[1] >= 2) {
    S.keys.set(S.frame, b);
    status(`box on ${frameText(S.frame)}: ${b.join(", ")}`, true);
  }
  updateKeys();
  draw();
}
function deleteBox(frame) {
  if (!editable() || !S.keys.has(frame)) return;
  S.keys.delete(frame);
  updateKeys();
  draw();
}
function sortedKeys() { return [...S.keys.keys()].sort((a, b) => a - b); }
function updateKeys() {
  const max = S.info ? S.info.max_key_frames : 10;
  $("key-count").textContent = `${S.keys.size} of ${max}`;
  const body = $("keyframes").tBodies[0];
  body.replaceChildren();
  for (const f of sortedKeys()) {
    const tr = el("tr");
    tr.dataset.frame = f;
    const go = el("button", "go"); go.type = "button"; go.onclick = () => goto(f);
    const del = el("button", "delete"); del.type = "button"; del.onclick = () => deleteBox(f);
    del.disabled = !editable();
    const tools = el("td"); tools.append(go, " ", del);
    tr.append(el("td", frameText(f)), el("td", S.keys.get(f).join(", "), "box"), tools);
    body.appendChild(tr);
  }
  if (!S.keys.size) {
    const tr = el("tr"); tr.appendChild(el("td", "none yet: drag on a frame to draw the nodule's box", "muted"));
    tr.firstChild.colSpan = 3; body.appendChild(tr);
  }
  const stale = S.pred && S.predKeys !== JSON.stringify([...S.keys]);
  $("result").classList.toggle("stale", Boolean(stale));
  $("predict").disabled = !S.video || !S.keys.size || S.mode === "study";
  markCurrent();
}
function markCurrent() {
  for (const tr of $("keyframes").tBodies[0].rows) tr.classList.toggle("current", Number(tr.dataset.frame) === S.frame);
}
function stepKey(dir) {
  const keys = sortedKeys();
  const next = dir > 0 ? keys.find((f) => f > S.frame) : keys.reverse().find((f) => f < S.frame);
  if (next !== undefined) goto(next);
}

// ------------------------------------------------------------------ playing
function stop() {
  if (S.playing) clearInterval(S.playing);
  S.playing = null;
  $("play").textContent = "play";
}
function play() {
  if (!S.video) return;
  if (S.playing) { stop(); return; }
  const fps = Math.min(30, S.video.fps || 10);
  S.playing = setInterval(() => goto(S.frame + 1 < S.video.n_frames ? S.frame + 1 : 0), 1000 / fps);
  $("play").textContent = "pause";
}

// ------------------------------------------------------------------ predicting
function keyframesBody() {
  return sortedKeys().map((f) => ({ frame: f, box: S.keys.get(f) }));
}
async function predict() {
  if (!S.video || !S.keys.size) return;
  $("predict").disabled = true;
  $("result").replaceChildren(el("p", "predicting\u2026", "muted"));
  try {
    const answer = await postJSON("api/predict", { video: S.video.id, keyframes: keyframesBody(), cam: true });
    S.pred = answer; S.predKeys = JSON.stringify([...S.keys]); S.cams.clear();
    $("result").replaceChildren(...resultParts(answer, "key frame"));
    $("cam-bar").hidden = false;
    status("", true);
  } catch (err) {
    $("result").replaceChildren();
    status(err.message);
  }
  updateKeys();
  draw();
}
function gauge(prob, thr, band) {
  const g = el("div", null, "gauge");
  g.setAttribute("aria-label", "P(malignant) against the threshold");
  const pct = (v) => `${(100 * Math.max(0, Math.min(1, v))).toFixed(2)}%`;
  if (band) {
    const b = el("div", null, "band"); b.style.left = pct(band.low); b.style.width = pct(band.high - band.low);
    b.title = "where the threshold moves on other validation samples"; g.appendChild(b);
  }
  if (thr !== null) { const t = el("div", null, "thr"); t.style.left = pct(thr); g.appendChild(t); }
  const p = el("div", null, "prob"); p.style.left = pct(prob); g.appendChild(p);
  for (const [v, text] of [[0, "0"], [1, "1"], ...(thr !== null ? [[thr, `threshold ${thr.toFixed(3)}`]] : [])]) {
    const t = el("span", text, "tick"); t.style.left = pct(v); g.appendChild(t);
  }
  return g;
}
function resultParts(a, unit) {
  const near = a.margin && a.margin.near;
  const parts = [el("p", `P(malignant) = ${f4(a.prob)}`, "call")];
  parts[0].id = "prob";
  const call = a.decision ? `\u2192 ${a.decision}` : "\u2192 no decision (the run has no threshold)";
  parts.push(el("p", near ? `${call}, but near the threshold: not a clear call` : call,
    "decision " + (near ? "near" : (a.decision || ""))));
  parts.push(gauge(a.prob, a.threshold, a.margin && a.margin.band));
  if (a.threshold !== null) parts.push(el("p", `threshold ${f4(a.threshold)}: ${a.threshold_source}`, "muted"));
  else parts.push(el("p", a.threshold_source, "warning"));
  if (a.margin) parts.push(el("p", `uncertainty: ${a.margin.words}`, near ? "warning" : "muted"));
  if (a.prob_interval) {
    const i = a.prob_interval;
    parts.push(el("p", `${Math.round(i.level * 100)}% interval of P(malignant): ${f4(i.low)}\u2013${f4(i.high)} (${i.method})`, "muted"));
  } else if (a.clips) {
    parts.push(el("p", `one ${unit}: no interval of P(malignant) (box 2 or more key frames for one)`, "muted"));
  }
  if (a.vote) parts.push(el("p", `video P(malignant) = ${a.vote}`, "muted"));
  if (a.clips) {
    const table = el("table");
    table.id = "per-key-frame";
    const head = table.createTHead().insertRow();
    for (const h of ["key frame (index)", "P(malignant)", "region used"]) head.appendChild(el("th", h));
    for (const c of a.clips) {
      const tr = table.insertRow();
      tr.append(el("td", frameText(c.frame)), el("td", f4(c.prob)), el("td", c.roi.join(", ")));
    }
    parts.push(table);
  }
  for (const w of a.warnings || []) parts.push(el("p", `warning: ${w.message}`, "warning"));
  for (const n of a.notes || []) parts.push(el("p", `note: ${n}`, "muted"));
  return parts;
}

// ------------------------------------------------------------------ annotate mode
async function loadSaved() {
  const body = $("a-saved").tBodies[0];
  body.replaceChildren();
  if (!S.video) return;
  let rows = [];
  try { rows = (await api(`api/annotations?video=${S.video.id}`)).rows; } catch (err) { status(err.message); return; }
  const nodules = new Map();
  for (const r of rows) {
    const key = `${r.patient_id}\u0000${r.nodule_id}`;
    if (!nodules.has(key)) nodules.set(key, []);
    nodules.get(key).push(r);
  }
  for (const group of nodules.values()) {
    const r = group[0];
    const tr = body.insertRow();
    const load = el("button", "continue"); load.type = "button"; load.onclick = () => loadNodule(group);
    const tools = el("td"); tools.appendChild(load);
    tr.append(el("td", `${r.patient_id} / ${r.nodule_id}`), el("td", r.label === "1" ? "malignant" : "benign"),
      el("td", group.map((g) => `${g.frame + 1} (${g.frame})`).join(", ")), tools);
  }
  if (nodules.size && !S.keys.size) loadNodule([...nodules.values()][0]);
}
function loadNodule(rows) {
  const r = rows[0];
  $("a-patient").value = r.patient_id; $("a-nodule").value = r.nodule_id; $("a-center").value = r.center;
  $("a-label").value = String(r.label) === "1" ? "malignant" : "benign"; $("a-split").value = r.split || "";
  S.keys.clear();
  for (const g of rows) S.keys.set(g.frame, [g.x0, g.y0, g.x1, g.y1]);
  updateKeys(); goto(rows[0].frame);
  $("a-status").textContent = `loaded ${rows.length} saved key frame(s) of ${r.patient_id} / ${r.nodule_id}`;
}
async function saveAnnotation() {
  if (!S.video) { status("video: open a video first"); return; }
  const body = {
    video: S.video.id, patient_id: $("a-patient").value, nodule_id: $("a-nodule").value,
    center: $("a-center").value, label: $("a-label").value, split: $("a-split").value,
    keyframes: keyframesBody(),
  };
  try {
    const answer = await postJSON("api/annotations", body);
    $("a-status").textContent = `saved ${answer.written.length} row(s) to cohort.csv (${answer.rows_in_file} rows in the file)`;
    status("", true);
    const keep = new Map(S.keys);
    await loadSaved();
    S.keys = keep; updateKeys();
  } catch (err) { status(err.message); }
}

// ------------------------------------------------------------------ reading mode
async function startStudy() {
  try {
    const state = await postJSON("api/study/session", { reader: $("s-reader").value, group: $("s-group").value });
    await showState(state);
  } catch (err) { status(err.message); }
}
async function showState(state) {
  S.study = state;
  $("s-model").replaceChildren();
  S.pred = null; $("cam-bar").hidden = true;
  if (state.step === "done") {
    $("s-case").hidden = true; $("s-done").hidden = false;
    $("s-done").textContent = `All ${state.n_cases} cases read by ${state.reader}, without and with the model. ` +
      "The readings are in readers.csv: thyrovid readers READERS_CSV analyses them.";
    return;
  }
  $("s-done").hidden = true; $("s-case").hidden = false;
  const tirads = state.scale === "tirads";
  const score = $("s-score");
  score.min = tirads ? 1 : 0; score.max = tirads ? 5 : 1; score.step = tirads ? 1 : 0.01; score.value = "";
  $("s-score-label").firstChild.textContent = tirads ? "TI-RADS (1\u20135) " : "P(malignant) (0\u20131) ";
  for (const r of document.getElementsByName("s-decision")) r.checked = false;
  $("s-where").textContent = `case ${state.position} of ${state.n_cases}`;
  $("s-step").textContent = state.step === "unaided"
    ? "Read this case without the model: score it and decide."
    : "Now with the model: its output is below; score the case again.";
  $("s-save").textContent = state.step === "unaided" ? "Save reading without the model" : "Save reading with the model";
  if (!S.studyCase || S.studyCase.case !== state.case) {
    const c = await api(`api/study/case?reader=${encodeURIComponent(state.reader)}&case=${encodeURIComponent(state.case)}`);
    S.studyCase = c;
    await showVideo(c.video);
  }
  if (state.step === "aided") {
    const m = await api(`api/study/model?reader=${encodeURIComponent(state.reader)}&case=${encodeURIComponent(state.case)}`);
    const parts = [el("h2", "The model's output")];
    parts.push(...resultParts({ ...m, prob_interval: null, clips: null, warnings: m.videos.flatMap((v) => v.warnings) }, "video"));
    $("s-model").replaceChildren(...parts);
    const first = m.videos.find((v) => v.video.id === S.video.id) || m.videos[0];
    S.pred = first; S.cams.clear();
    S.keys.clear();
    for (const c of first.clips) S.keys.set(c.frame, c.box.map(Math.round));
    $("cam-bar").hidden = false;
    updateKeys(); goto(first.clips[0].frame);
  }
}
async function saveReading() {
  const st = S.study;
  const picked = [...document.getElementsByName("s-decision")].find((r) => r.checked);
  const body = {
    reader: st.reader, group: st.group || "", case: st.case, modality: st.step,
    score: $("s-score").value === "" ? null : Number($("s-score").value),
    decision: picked ? Number(picked.value) : null,
  };
  try {
    const state = await postJSON("api/study/readings", body);
    status(`saved the ${st.step} reading of case ${st.position}`, true);
    await showState(state);
  } catch (err) { status(err.message); }
}

// ------------------------------------------------------------------ modes, events
function setMode(mode) {
  S.mode = mode;
  for (const b of document.querySelectorAll("#modes button")) b.classList.toggle("active", b.dataset.mode === mode);
  $("panel-predict").hidden = mode === "study";
  $("panel-annotate").hidden = mode !== "annotate";
  $("panel-study").hidden = mode !== "study";
  $("open").hidden = mode === "study";
  if (mode === "annotate") loadSaved();
  updateKeys();
}
function onKey(event) {
  const tag = (event.target.tagName || "").toLowerCase();
  if (["input", "select", "textarea"].includes(tag) && event.target.type !== "range") return;
  if (!S.video) return;
  const step = event.shiftKey ? 10 : 1;
  const actions = {
    ArrowRight: () => goto(S.frame + step), ArrowLeft: () => goto(S.frame - step),
    "]": () => stepKey(1), PageDown: () => stepKey(1), "[": () => stepKey(-1), PageUp: () => stepKey(-1),
    Delete: () => deleteBox(S.frame), Backspace: () => deleteBox(S.frame), " ": () => play(),
    Home: () => goto(0), End: () => goto(S.video.n_frames - 1),
  };
  if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
}

window.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("#modes button")) b.onclick = () => setMode(b.dataset.mode);
  $("file").onchange = openUpload;
  $("open-root").onclick = openRoot;
  $("scrub").oninput = () => goto(Number($("scrub").value));
  $("prev").onclick = () => goto(S.frame - 1);
  $("next").onclick = () => goto(S.frame + 1);
  $("prev-key").onclick = () => stepKey(-1);
  $("next-key").onclick = () => stepKey(1);
  $("play").onclick = play;
  $("predict").onclick = predict;
  $("cam-on").onchange = draw;
  $("cam-alpha").oninput = draw;
  $("a-save").onclick = saveAnnotation;
  $("s-go").onclick = startStudy;
  $("s-save").onclick = saveReading;
  const canvas = $("view");
  canvas.addEventListener("mousedown", onDown);
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  document.addEventListener("keydown", onKey);
  loadInfo().catch((err) => { $("run").textContent = `could not reach the server: ${err.message}`; });
});
