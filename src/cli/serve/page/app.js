// The relprop explainer page: every change of input or option asks the server for fresh
// explanations at once. Plain JavaScript, no libraries.
"use strict";

const STRIP_METHODS = ["lrp", "clrp1", "clrp2", "sglrp"];
const $ = (id) => document.getElementById(id);

const state = {
  models: [],
  methods: [],
  model: null,
  // The input as given: {shape, data} values, or {image} base64 (PNG or JPEG); drawing
  // resamples the canvas.
  source: null,
  // Classes of a composite's two digits, when the input is one.
  labels: null,
  digitIndex: 0,
  seq: 0,
  busy: false,
  pending: false,
  explained: 0,
};

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}

async function getJson(url, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(url, init);
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text === undefined ? value : text;
  select.appendChild(o);
}

// ---- drawing -------------------------------------------------------------------------

const draw = $("draw");
const pen = draw.getContext("2d");
let last = null;

function clearCanvas() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, draw.width, draw.height);
}

function canvasPoint(e) {
  const r = draw.getBoundingClientRect();
  return [(e.clientX - r.left) * draw.width / r.width, (e.clientY - r.top) * draw.height / r.height];
}

function stroke(to) {
  pen.strokeStyle = "#fff";
  pen.lineWidth = Number($("pen").value);
  pen.lineCap = "round";
  pen.lineJoin = "round";
  pen.beginPath();
  pen.moveTo(last[0], last[1]);
  pen.lineTo(to[0], to[1]);
  pen.stroke();
  last = to;
}

draw.addEventListener("pointerdown", (e) => {
  draw.setPointerCapture(e.pointerId);
  if (state.source !== null) {
    // Drawing continues on what the canvas shows; the canvas is now the input.
    state.source = null;
    state.labels = null;
    fillTargets();
  }
  last = canvasPoint(e);
  stroke(last);
  explainSoon();
});
draw.addEventListener("pointermove", (e) => {
  if (last === null) return;
  stroke(canvasPoint(e));
  explainSoon();
});
const endStroke = () => {
  if (last === null) return;
  last = null;
  explainSoon();
};
draw.addEventListener("pointerup", endStroke);
draw.addEventListener("pointercancel", endStroke);

// Shows values [C, H, W] on the drawing canvas (RGB as colour, else channels averaged),
// scaled up.
function showOnCanvas(shape, data) {
  const [c, h, w] = shape;
  const small = document.createElement("canvas");
  small.width = w;
  small.height = h;
  const ctx = small.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    let v = 0;
    const byte = (x) => Math.max(0, Math.min(255, Math.round(255 * x)));
    if (c === 3) {
      img.data.set([0, 1, 2].map((k) => byte(data[k * h * w + i])).concat(255), 4 * i);
      continue;
    }
    for (let k = 0; k < c; k++) v += data[k * h * w + i];
    const g = byte(v / c);
    img.data.set([g, g, g, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
  clearCanvas();
  pen.imageSmoothingEnabled = false;
  pen.drawImage(small, 0, 0, draw.width, draw.height);
}

// The canvas resampled to [C, H, W] values in [0, 1].
function canvasValues(shape) {
  const [c, h, w] = shape;
  const small = document.createElement("canvas");
  small.width = w;
  small.height = h;
  const ctx = small.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(draw, 0, 0, w, h);
  const px = ctx.getImageData(0, 0, w, h).data;
  const out = new Array(c * h * w);
  for (let i = 0; i < h * w; i++) {
    if (c === 3) {
      for (let k = 0; k < 3; k++) out[k * h * w + i] = px[4 * i + k] / 255;
    } else {
      const g = (px[4 * i] + px[4 * i + 1] + px[4 * i + 2]) / (3 * 255);
      for (let k = 0; k < c; k++) out[k * h * w + i] = g;
    }
  }
  return out;
}

function sameShape(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

// The request's input for the current model.
function requestInput() {
  const shape = state.model.input_shape;
  const s = state.source;
  if (s && s.image) return { image: s.image };
  if (s && sameShape(s.shape, shape)) return { input: { shape, data: s.data } };
  return { input: { shape, data: canvasValues(shape) } };
}

// ---- inputs: bundled digits, composites, uploads ---------------------------------------

function useValues(answer, info) {
  // A bundled input of another shape switches to a model that takes it (lenet5 first).
  if (!sameShape(state.model.input_shape, answer.shape)) {
    const fits = state.models.filter((m) => sameShape(m.input_shape, answer.shape));
    const m = fits.find((x) => x.name === "lenet5") || fits[0];
    if (m) {
      $("model").value = m.name;
      state.model = m;
    }
  }
  state.source = { shape: answer.shape, data: answer.data };
  state.labels = answer.labels || null;
  showOnCanvas(answer.shape, answer.data);
  $("input-info").textContent = info;
  fillTargets();
  explainNow();
}

async function loadDigit() {
  const cls = $("digit-class").value;
  try {
    const a = await getJson(`/api/digit?class=${cls}&index=${state.digitIndex}`);
    useValues(a, `test digit ${a.label} (#${state.digitIndex})`);
  } catch (e) {
    setStatus("error: " + e.message, true);
  }
}

async function loadComposite(random) {
  const url = random
    ? `/api/composite?seed=${Math.floor(Math.random() * 1e9)}`
    : `/api/composite?left=${$("comp-left").value}&right=${$("comp-right").value}&index=${state.digitIndex}`;
  try {
    const a = await getJson(url);
    useValues(a, `two-digit composite ${a.labels[0]} + ${a.labels[1]}`);
  } catch (e) {
    setStatus("error: " + e.message, true);
  }
}

$("upload").addEventListener("change", () => {
  const file = $("upload").files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const url = reader.result;
    state.source = { image: url.slice(url.indexOf(",") + 1) };
    state.labels = null;
    const img = new Image();
    img.onload = () => {
      clearCanvas();
      pen.imageSmoothingEnabled = true;
      if (takesPhotos()) {
        // The server resizes and centre-crops 224/256 of the shorter side: show that square.
        const side = (Math.min(img.width, img.height) * 224) / 256;
        const x = (img.width - side) / 2;
        const y = (img.height - side) / 2;
        pen.drawImage(img, x, y, side, side, 0, 0, draw.width, draw.height);
      } else {
        pen.drawImage(img, 0, 0, draw.width, draw.height);
      }
    };
    img.src = url;
    $("input-info").textContent = takesPhotos()
      ? `uploaded ${file.name} (resized and centre-cropped on the server)`
      : `uploaded ${file.name} (the model's input size is needed)`;
    fillTargets();
    explainNow();
  };
  reader.readAsDataURL(file);
});

// Whether the current model takes photos of any size (the ImageNet model, which names
// its classes).
function takesPhotos() {
  return Boolean(state.model && state.model.class_names);
}

async function loadPhoto() {
  const name = $("photo").value;
  if (!name) return;
  try {
    setStatus("loading photo…");
    const a = await getJson(`/api/photos/${encodeURIComponent(name)}`);
    useValues(a, `photo: ${name} (resized to 256, centre 224x224)`);
  } catch (e) {
    setStatus("error: " + e.message, true);
  }
}

// ---- selectors -----------------------------------------------------------------------

function fillTargets() {
  const t = $("target");
  const before = t.value;
  t.textContent = "";
  if (state.labels) option(t, "both", `each digit (${state.labels[0]} and ${state.labels[1]})`);
  option(t, "", "predicted class");
  const names = state.model.class_names;
  for (let k = 0; k < state.model.classes; k++) {
    option(t, String(k), names ? `${k}: ${names[k]}` : `class ${k}`);
  }
  const keep = [...t.options].some((o) => o.value === before) && !(state.labels && before === "");
  t.value = keep ? before : t.options[0].value;
}

function fillRules() {
  const m = state.methods.find((x) => x.name === $("method").value);
  const r = $("rules");
  r.disabled = !m || !m.takes_rules;
  r.options[0].textContent = m && m.takes_rules ? `default (${m.default_rules})` : "not used";
}

// The targets to explain: one class, the predicted one (null), or a composite's two.
function targets() {
  const v = $("target").value;
  if (v === "both" && state.labels) return state.labels.slice();
  return [v === "" ? null : Number(v)];
}

function request(method, target) {
  const body = Object.assign({ model: state.model.name, method }, requestInput());
  const m = state.methods.find((x) => x.name === method);
  if ($("rules").value && m && m.takes_rules) body.rules = $("rules").value;
  if (target !== null) body.target = target;
  return body;
}

// ---- explaining ----------------------------------------------------------------------

// While drawing, explain as often as answers come back: one request batch in flight.
function explainSoon() {
  if (state.busy) {
    state.pending = true;
    return;
  }
  explainNow();
}

async function explainNow() {
  if (!state.model) return;
  const seq = ++state.seq;
  state.busy = true;
  state.pending = false;
  document.body.dataset.state = "busy";
  setStatus("explaining…");
  const start = performance.now();
  try {
    const ts = targets();
    const main = getJson("/api/explain", request($("method").value, ts[0]));
    if (takesPhotos()) {
      // A photo model takes a second or more per map: show the chosen one first, then
      // the side-by-side methods one after another, so the server is never flooded.
      const answer = await main;
      if (seq !== state.seq) return;
      render(answer, [], ts, performance.now() - start);
      document.body.dataset.state = "busy";
      const row = [];
      for (const m of STRIP_METHODS) {
        setStatus(`explaining (${m}, ${row.length + 1} of ${STRIP_METHODS.length})…`);
        row.push(await getJson("/api/explain", request(m, ts[0])));
        if (seq !== state.seq) return;
        renderStrip([row], ts);
      }
      document.body.dataset.state = "idle";
      setStatus("ready");
      return;
    }
    const strip = ts.map((t) => STRIP_METHODS.map((m) => getJson("/api/explain", request(m, t))));
    const [answer, ...rows] = await Promise.all([main, ...strip.map((r) => Promise.all(r))]);
    if (seq === state.seq) {
      render(answer, rows, ts, performance.now() - start);
    }
  } catch (e) {
    if (seq === state.seq) {
      setStatus("error: " + e.message, true);
      document.body.dataset.state = "error";
    }
  } finally {
    state.busy = false;
    if (state.pending) explainNow();
  }
}

function render(answer, rows, ts, ms) {
  renderPrediction(answer);
  const title = `${answer.method}${answer.rules ? " (" + answer.rules + ")" : ""}, class ${answer.target}`;
  $("heatmap-title").textContent = "Heatmap: " + title;
  const m = drawHeatmap($("heatmap"), answer.relevance);
  drawColorbar(m);
  renderStrip(rows, ts);
  drawAudit($("audit"), answer);
  $("audit-notes").textContent = (answer.notes || []).join(" ");
  const count = rows.length ? 1 + rows.length * STRIP_METHODS.length : 1;
  $("timing").textContent =
    `${count} explanation${count > 1 ? "s" : ""} in ${ms.toFixed(0)} ms ` +
    `(this one: ${answer.elapsed_ms.toFixed(1)} ms on the server)`;
  state.explained += 1;
  document.body.dataset.explained = String(state.explained);
  document.body.dataset.state = "idle";
  setStatus("ready");
}

function renderPrediction(answer) {
  const p = answer.probabilities;
  const names = state.model.class_names;
  const label = (k) => (names ? `${names[k]} (${k})` : String(k));
  $("predicted").textContent = `predicted: ${label(answer.predicted)} (${(100 * p[answer.predicted]).toFixed(1)}%)`;
  const box = $("probs");
  box.textContent = "";
  // Many classes: the five most probable, by name.
  const shown = p.map((v, k) => k);
  if (p.length > 10) shown.sort((a, b) => p[b] - p[a]).splice(5);
  shown.forEach((k) => {
    const v = p[k];
    const name = document.createElement("span");
    name.textContent = names ? names[k] : k;
    const bar = document.createElement("div");
    bar.className = "bar" + (k === answer.predicted ? " top" : "");
    const fill = document.createElement("div");
    fill.style.width = `${(100 * v).toFixed(1)}%`;
    bar.appendChild(fill);
    const value = document.createElement("span");
    value.textContent = `${(100 * v).toFixed(1)}%`;
    box.append(name, bar, value);
  });
}

// Red for positive relevance, blue for negative, white for none (the CLI's bwr map).
function bwr(t) {
  const a = Math.min(1, Math.abs(t));
  const fade = Math.round(255 * (1 - a));
  return t >= 0 ? [255, fade, fade] : [fade, fade, 255];
}

// Draws a relevance map (channels summed), scaled to its largest magnitude; returns it.
function drawHeatmap(canvas, relevance) {
  const [c, h, w] = relevance.shape;
  const map = new Float64Array(h * w);
  for (let k = 0; k < c; k++) for (let i = 0; i < h * w; i++) map[i] += relevance.data[k * h * w + i];
  let m = 0;
  for (const v of map) m = Math.max(m, Math.abs(v));
  const small = document.createElement("canvas");
  small.width = w;
  small.height = h;
  const ctx = small.getContext("2d");
  const img = ctx.createImageData(w, h);
  // On a photo, the map is an overlay: opaque where relevance is large, clear where none.
  const overlay = takesPhotos();
  for (let i = 0; i < h * w; i++) {
    const t = m > 0 ? map[i] / m : 0;
    const alpha = overlay ? Math.round(255 * Math.min(1, 1.5 * Math.abs(t))) : 255;
    img.data.set([...bwr(t), alpha], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
  const out = canvas.getContext("2d");
  out.clearRect(0, 0, canvas.width, canvas.height);
  if (overlay) {
    // The input as shown on the drawing canvas, dimmed to grey so the map stands out.
    out.filter = "grayscale(1) opacity(0.6)";
    out.drawImage(draw, 0, 0, canvas.width, canvas.height);
    out.filter = "none";
  }
  out.imageSmoothingEnabled = false;
  out.drawImage(small, 0, 0, canvas.width, canvas.height);
  return m;
}

function drawColorbar(m) {
  const bar = $("colorbar");
  const ctx = bar.getContext("2d");
  for (let x = 0; x < bar.width; x++) {
    const [r, g, b] = bwr((2 * x) / (bar.width - 1) - 1);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x, 0, 1, bar.height);
  }
  $("cbar-min").textContent = (-m).toPrecision(2);
  $("cbar-max").textContent = "+" + m.toPrecision(2);
}

function renderStrip(rows, ts) {
  const strip = $("strip");
  strip.textContent = "";
  rows.forEach((answers, r) => {
    answers.forEach((a) => {
      const fig = document.createElement("figure");
      const canvas = document.createElement("canvas");
      canvas.width = 140;
      canvas.height = 140;
      drawHeatmap(canvas, a.relevance);
      const cap = document.createElement("figcaption");
      cap.textContent = `${a.method}, class ${a.target}` + (ts.length > 1 ? ` (digit ${r + 1})` : "");
      fig.append(canvas, cap);
      strip.appendChild(fig);
    });
  });
}

// Bars of the relevance sum at each layer's output, seed first; orange marks where an
// affine layer's bias absorbs relevance (its output sum minus its input's).
function drawAudit(canvas, answer) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  const rows = [{ label: "seed", op: "logits", sum: answer.seed_sum }].concat(answer.audit);
  canvas.dataset.rows = String(answer.audit.length);
  const top = 24;
  const bottom = H - 80;
  const left = 64;
  const scale = Math.max(1e-12, ...rows.map((r) => Math.abs(r.sum)));
  const zero = rows.some((r) => r.sum < 0) ? (top + bottom) / 2 : bottom;
  const span = zero - top;
  const y = (v) => zero - (v / scale) * span;
  const slot = (W - left - 10) / rows.length;
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = "#999";
  ctx.beginPath();
  ctx.moveTo(left, zero);
  ctx.lineTo(W - 10, zero);
  ctx.stroke();
  ctx.fillStyle = "#333";
  ctx.textAlign = "right";
  ctx.fillText(scale.toPrecision(2), left - 4, top + 4);
  ctx.fillText("0", left - 4, zero + 4);
  // The seed: what a conserving walk keeps at every layer.
  ctx.setLineDash([5, 4]);
  ctx.strokeStyle = "#1d2430";
  ctx.beginPath();
  ctx.moveTo(left, y(answer.seed_sum));
  ctx.lineTo(W - 10, y(answer.seed_sum));
  ctx.stroke();
  ctx.setLineDash([]);
  const tolerance = 1e-4 * Math.max(answer.seed_abs, 1e-12);
  let absorbed = 0;
  rows.forEach((r, i) => {
    const x = left + i * slot + slot * 0.15;
    const bw = slot * 0.7;
    ctx.fillStyle = i === 0 ? "#1d2430" : r.sum >= 0 ? "#4a6fd8" : "#8fa6e8";
    ctx.fillRect(x, Math.min(y(r.sum), zero), bw, Math.abs(y(r.sum) - zero));
    const below = rows[i + 1];
    if (i > 0 && below && (r.op === "linear" || r.op === "conv2d")) {
      const d = r.sum - below.sum;
      if (Math.abs(d) > tolerance) {
        absorbed += 1;
        ctx.fillStyle = "#e8871e";
        const my = Math.min(y(r.sum), zero) - 4;
        ctx.beginPath();
        ctx.moveTo(x + bw / 2 - 6, my - 10);
        ctx.lineTo(x + bw / 2 + 6, my - 10);
        ctx.lineTo(x + bw / 2, my);
        ctx.fill();
        ctx.textAlign = "center";
        ctx.fillText((d >= 0 ? "-" : "+") + Math.abs(d).toPrecision(2), x + bw / 2, my - 13);
      }
    }
    ctx.save();
    ctx.translate(x + bw / 2, bottom + 6);
    ctx.rotate(Math.PI / 4);
    ctx.textAlign = "left";
    ctx.fillStyle = "#333";
    ctx.fillText(`${r.label}`, 0, 0);
    ctx.restore();
  });
  canvas.dataset.absorbed = String(absorbed);
}

// ---- start ---------------------------------------------------------------------------

function onModel() {
  state.model = state.models.find((m) => m.name === $("model").value);
  const [c, h, w] = state.model.input_shape;
  $("input-info").textContent = `${state.model.name} takes ${c}x${h}x${w} inputs`;
  fillTargets();
  explainNow();
}

async function start() {
  clearCanvas();
  try {
    const [models, methods] = await Promise.all([getJson("/api/models"), getJson("/api/methods")]);
    state.models = models;
    state.methods = methods.methods;
    for (const m of models) option($("model"), m.name, `${m.name} [${m.input_shape.join("x")}]`);
    for (const m of methods.methods) option($("method"), m.name);
    option($("rules"), "", "default");
    for (const r of methods.rules) option($("rules"), r);
    for (let k = 0; k < 10; k++) {
      option($("digit-class"), String(k));
      option($("comp-left"), String(k));
      option($("comp-right"), String(k));
    }
    $("digit-class").value = "3";
    $("comp-left").value = "4";
    $("comp-right").value = "7";
    $("method").value = "lrp";
    if (models.some((m) => m.class_names)) {
      // The ImageNet model is served: offer the bundled photos.
      option($("photo"), "", "choose…");
      for (const p of await getJson("/api/photos")) option($("photo"), p.name, `${p.name}: ${p.subject}`);
      $("photo-row").hidden = false;
    }
    if (models.some((m) => m.name === "lenet5")) $("model").value = "lenet5";
    state.model = state.models.find((m) => m.name === $("model").value);
    fillRules();
    fillTargets();
    setStatus("ready");
    await loadDigit();
  } catch (e) {
    setStatus("error: " + e.message, true);
  }
}

$("model").addEventListener("change", onModel);
$("method").addEventListener("change", () => { fillRules(); explainNow(); });
$("rules").addEventListener("change", explainNow);
$("target").addEventListener("change", explainNow);
$("clear").addEventListener("click", () => {
  clearCanvas();
  state.source = null;
  state.labels = null;
  $("input-info").textContent = "Draw with the mouse or a finger.";
  fillTargets();
  explainNow();
});
$("digit-class").addEventListener("change", () => { state.digitIndex = 0; loadDigit(); });
$("digit-next").addEventListener("click", () => { state.digitIndex += 1; loadDigit(); });
$("comp-build").addEventListener("click", () => loadComposite(false));
$("comp-random").addEventListener("click", () => loadComposite(true));
$("photo").addEventListener("change", loadPhoto);
start();
