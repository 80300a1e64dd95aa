// superres serve: the page's behaviour. No framework and no request beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const MIN_ZOOM = 0.02;
const MAX_ZOOM = 32;
const POLL_MS = 250;

const page = {
  catalog: null,    // /api/models
  file: null,       // the chosen File
  localSize: null,  // [width, height] of the chosen file, when the browser can decode it
  preview: null,    // its object URL
  busy: false,
  measuring: Promise.resolve(),  // speed measurements, one after the other
};
const view = { z: 1, tx: 0, ty: 0, width: 0, height: 0, split: 50, compared: false };

// ------------------------------------------------------------------ formatting

function seconds(s) {
  if (s < 1) return `${Math.max(1, Math.round(s * 1000))} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function bytes(n) {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MB` : `${Math.ceil(n / 1024)} KB`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

// ------------------------------------------------------------------ messages

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setProgress(fraction, text) {
  $("progress-box").hidden = false;
  if (fraction === null) $("progress").removeAttribute("value");
  else $("progress").value = fraction;
  $("status").textContent = text;
}

// ------------------------------------------------------------------ choices

function selected(name) {
  const input = document.querySelector(`input[name="${name}"]:checked`);
  return input ? input.value : null;
}

function modelRow(name) {
  return page.catalog.models.find((row) => row.name === name);
}

function renderScales() {
  const box = $("scales");
  box.replaceChildren();
  for (const scale of page.catalog.scales) {
    const input = el("input", { type: "radio", name: "scale", value: String(scale) });
    input.checked = scale === page.catalog.default_scale;
    input.addEventListener("change", renderModels);
    box.append(el("label", { title: `${scale}× wider and taller` }, input, `×${scale}`));
  }
  box.setAttribute("role", "radiogroup");
  box.setAttribute("aria-label", "Scale");
}

function qualityText(quality) {
  if (!quality) return el("span", { textContent: "no benchmark score" });
  const parts = [];
  for (const set of ["Set5", "Set14"]) {
    if (quality[set]) parts.push(parts.length ? " · " : "", `${set} `, el("b", { textContent: quality[set][0].toFixed(2) }));
  }
  parts.push(quality.source === "paper" ? " dB (paper)" : " dB");
  return el("span", {}, ...parts);
}

function speedText(name, scale) {
  const speed = modelRow(name).speed[scale];
  const node = el("span", { id: `speed-${name}`, title: "seconds per megapixel of input, measured on this computer" });
  if (speed == null) node.textContent = "speed…";
  else node.append(el("b", { textContent: seconds(speed) }), " / MP");
  return node;
}

function renderModels() {
  const scale = selected("scale");
  const previous = selected("model");
  const box = $("models");
  box.replaceChildren();
  const rows = page.catalog.models.filter((row) => row.scales.includes(Number(scale)));
  const choice = rows.some((row) => row.name === previous) ? previous : page.catalog.defaults[scale];
  for (const row of rows) {
    const input = el("input", { type: "radio", name: "model", value: row.name, id: `model-${row.name}` });
    input.checked = row.name === choice;
    input.addEventListener("change", updateEstimate);
    const head = el("span", { className: "model-name", textContent: row.name });
    if (row.name === page.catalog.defaults[scale]) head.append(el("span", { className: "badge", textContent: "default" }));
    const params = row.learned ? `${row.params[scale].toLocaleString("en")} parameters` : "no parameters";
    box.append(el("label", { className: "model" }, input, head,
      el("span", { className: "model-summary", title: row.summary, textContent: row.summary }),
      el("span", { className: "stats" }, qualityText(row.quality[scale]),
        el("span", { textContent: params }), speedText(row.name, scale))));
  }
  // the chosen model first, then the others, one at a time: each is timed on this machine
  for (const row of [...rows].sort((a, b) => (b.name === choice) - (a.name === choice))) {
    page.measuring = page.measuring.then(() => measureSpeed(row.name, scale));
  }
  updateEstimate();
}

async function measureSpeed(name, scale) {
  const row = modelRow(name);
  if (row.speed[scale] == null) {
    try {
      const response = await fetch(`/api/speed?model=${encodeURIComponent(name)}&scale=${scale}`);
      const data = await response.json();
      if (!response.ok) throw new Error(data.error);
      row.speed[scale] = data.seconds_per_megapixel;
    } catch (err) {
      const shown = $(`speed-${name}`);
      if (shown) shown.textContent = "speed unknown";
      return;
    }
  }
  const shown = $(`speed-${name}`);
  if (shown && selected("scale") === String(scale)) shown.replaceWith(speedText(name, scale));
  updateEstimate();
}

function estimate() {
  const model = selected("model");
  const scale = selected("scale");
  const speed = model && modelRow(model).speed[scale];
  if (!page.localSize || speed == null) return null;
  const [width, height] = page.localSize;
  return speed * width * height / 1e6 * ($("tta").checked ? 8 : 1);
}

function updateEstimate() {
  const time = estimate();
  $("estimate").textContent = time === null ? "" : `about ${seconds(time)}`;
}

// ------------------------------------------------------------------ the file

function chooseFile(file) {
  clearError();
  page.file = file;
  page.localSize = null;
  $("file-name").textContent = `${file.name} · ${bytes(file.size)}`;
  const limit = page.catalog.limits.bytes;
  if (file.size > limit) {
    showError(`${file.name}: ${bytes(file.size)}, over the limit of ${bytes(limit)}`);
  }
  $("run").disabled = page.busy || file.size > limit;
  if (page.preview) URL.revokeObjectURL(page.preview);
  page.preview = URL.createObjectURL(file);
  const before = $("before");
  before.onload = () => {
    page.localSize = [before.naturalWidth, before.naturalHeight];
    showOnly(before.naturalWidth, before.naturalHeight);
    updateEstimate();
  };
  before.onerror = () => {  // TIFF and the like: the server decodes them
    $("viewer").classList.add("empty");
    $("placeholder").textContent = "No preview of this format in the browser; the comparison shows after upscaling.";
    updateEstimate();
  };
  before.src = page.preview;
}

// ------------------------------------------------------------------ the job

function submit(event) {
  event.preventDefault();
  if (!page.file || page.busy) return;
  clearError();
  const form = new FormData();
  form.append("file", page.file, page.file.name);
  form.append("model", selected("model"));
  form.append("scale", selected("scale"));
  form.append("tile", $("tile").value || "0");
  form.append("tta", $("tta").checked ? "1" : "0");
  setBusy(true);
  setProgress(0, "Uploading…");
  const request = new XMLHttpRequest();
  request.open("POST", "/api/jobs");
  request.responseType = "json";
  request.upload.onprogress = (e) => {
    if (e.lengthComputable) setProgress(e.loaded / e.total, `Uploading… ${Math.round(100 * e.loaded / e.total)}%`);
  };
  request.upload.onload = () => setProgress(null, "Checking the image…");
  request.onload = () => {
    const data = request.response;
    if (request.status === 202 && data) {
      follow(data);
    } else {
      fail(data && data.error ? data.error : `${request.status} ${request.statusText}`);
    }
  };
  request.onerror = () => fail("The upload failed: the server closed the connection or is not running.");
  request.send(form);
}

function follow(job) {
  if (job.state === "done") {
    showResult(job);
    return;
  }
  if (job.state === "failed") {
    fail(job.error);
    return;
  }
  const what = `${job.model} ×${job.scale}${job.tta ? " + TTA" : ""}`;
  if (job.state === "queued") {
    setProgress(null, `Waiting for ${job.ahead || 1} job(s) with ${job.model} to finish…`);
  } else if (job.estimate) {
    setProgress(Math.min(0.97, job.elapsed / job.estimate),
      `Upscaling with ${what}… ${seconds(job.elapsed)} of about ${seconds(job.estimate)}`);
  } else {
    setProgress(null, `Upscaling with ${what}… ${seconds(job.elapsed)}`);
  }
  setTimeout(async () => {
    try {
      const response = await fetch(`/api/jobs/${job.id}`, { cache: "no-store" });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error);
      follow(data);
    } catch (err) {
      fail(`Lost the job: ${err.message}`);
    }
  }, POLL_MS);
}

function fail(message) {
  setBusy(false);
  $("progress-box").hidden = true;
  showError(message);
}

function setBusy(busy) {
  page.busy = busy;
  $("run").disabled = busy || !page.file;
  $("run").textContent = busy ? "Working…" : "Upscale";
}

async function showResult(job) {
  setProgress(1, "Loading the result…");
  const before = $("before");
  const after = $("after");
  before.onload = before.onerror = null;
  before.src = `/api/jobs/${job.id}/before.png`;
  after.src = `/api/jobs/${job.id}/result.png`;
  try {
    await Promise.all([before.decode(), after.decode()]);
  } catch {
    fail("The result could not be shown.");
    return;
  }
  setBusy(false);
  $("progress-box").hidden = true;
  compare(job.out_width, job.out_height);
  const download = $("download");
  download.href = `/api/jobs/${job.id}/result.png?download=1`;
  download.download = job.download;
  download.textContent = `Download ${job.download}`;
  download.hidden = false;
  $("result-info").textContent = `${job.width}×${job.height} → ${job.out_width}×${job.out_height} ` +
    `with ${job.model} ×${job.scale}${job.tta ? " + TTA" : ""} in ${seconds(job.elapsed)}`;
  if (!job.tta) {  // a large enough job measured the model's speed again: show it
    modelRow(job.model).speed[job.scale] = null;
    page.measuring = page.measuring.then(() => measureSpeed(job.model, job.scale));
  }
}

// ------------------------------------------------------------------ the comparison

function showOnly(width, height) {
  view.compared = false;
  $("after-layer").hidden = true;
  $("divider").hidden = true;
  document.querySelector(".tag-after").hidden = true;
  $("download").hidden = true;
  $("result-info").textContent = "";
  $("split").disabled = true;
  setImageSize(width, height);
}

function compare(width, height) {
  view.compared = true;
  $("after-layer").hidden = false;
  $("divider").hidden = false;
  document.querySelector(".tag-after").hidden = false;
  $("split").disabled = false;
  setImageSize(width, height);
}

function setImageSize(width, height) {
  view.width = width;
  view.height = height;
  for (const img of [$("before"), $("after")]) {
    img.style.width = `${width}px`;
    img.style.height = `${height}px`;
  }
  $("viewer").classList.remove("empty");
  for (const id of ["zoom-in", "zoom-out", "zoom-fit", "zoom-1"]) $(id).disabled = false;
  fit();
}

function apply() {
  const transform = `translate(${view.tx}px, ${view.ty}px) scale(${view.z})`;
  $("before").style.transform = transform;
  $("after").style.transform = transform;
  $("after-layer").style.clipPath = `inset(0 0 0 ${view.split}%)`;
  $("divider").style.left = `${view.split}%`;
  $("zoom-level").textContent = `${Math.round(view.z * 100)}%`;
  // from 4x, show pixels as pixels (both images): the close look at what the model made
  $("viewer").classList.toggle("pixelated", view.z >= 4);
}

function fit() {
  const box = $("viewer").getBoundingClientRect();
  if (!view.width || !box.width) return;
  view.z = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, Math.min(box.width / view.width, box.height / view.height)));
  view.tx = (box.width - view.width * view.z) / 2;
  view.ty = (box.height - view.height * view.z) / 2;
  apply();
}

function zoomAt(z, x, y) {
  const next = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, z));
  view.tx = x - (x - view.tx) * next / view.z;
  view.ty = y - (y - view.ty) * next / view.z;
  view.z = next;
  apply();
}

function zoomCentre(factor) {
  const box = $("viewer").getBoundingClientRect();
  zoomAt(view.z * factor, box.width / 2, box.height / 2);
}

function setSplit(percent) {
  view.split = Math.min(100, Math.max(0, percent));
  $("split").value = String(Math.round(view.split));
  apply();
}

function viewerEvents() {
  const viewer = $("viewer");
  let drag = null;
  viewer.addEventListener("wheel", (e) => {
    if (!view.width) return;
    e.preventDefault();
    const box = viewer.getBoundingClientRect();
    zoomAt(view.z * Math.exp(-e.deltaY * 0.0015), e.clientX - box.left, e.clientY - box.top);
  }, { passive: false });
  viewer.addEventListener("pointerdown", (e) => {
    if (!view.width) return;
    const box = viewer.getBoundingClientRect();
    const nearDivider = Math.abs(e.clientX - box.left - box.width * view.split / 100) < 18;
    drag = { mode: view.compared && nearDivider ? "split" : "pan", x: e.clientX, y: e.clientY };
    viewer.setPointerCapture(e.pointerId);
    viewer.classList.add("dragging");
  });
  viewer.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const box = viewer.getBoundingClientRect();
    if (drag.mode === "split") {
      setSplit(100 * (e.clientX - box.left) / box.width);
    } else {
      view.tx += e.clientX - drag.x;
      view.ty += e.clientY - drag.y;
      apply();
    }
    drag.x = e.clientX;
    drag.y = e.clientY;
  });
  const stop = () => {
    drag = null;
    viewer.classList.remove("dragging");
  };
  viewer.addEventListener("pointerup", stop);
  viewer.addEventListener("pointercancel", stop);
  viewer.addEventListener("keydown", (e) => {
    if (!view.width) return;
    const pan = { ArrowLeft: [40, 0], ArrowRight: [-40, 0], ArrowUp: [0, 40], ArrowDown: [0, -40] }[e.key];
    if (pan) {
      view.tx += pan[0];
      view.ty += pan[1];
      apply();
    } else if (e.key === "+" || e.key === "=") {
      zoomCentre(1.25);
    } else if (e.key === "-") {
      zoomCentre(0.8);
    } else if (e.key === "0") {
      fit();
    } else if (e.key === "1") {
      zoomCentre(1 / view.z);
    } else {
      return;
    }
    e.preventDefault();
  });
  $("split").addEventListener("input", (e) => setSplit(Number(e.target.value)));
  $("zoom-in").addEventListener("click", () => zoomCentre(1.25));
  $("zoom-out").addEventListener("click", () => zoomCentre(0.8));
  $("zoom-fit").addEventListener("click", fit);
  $("zoom-1").addEventListener("click", () => zoomCentre(1 / view.z));
  window.addEventListener("resize", fit);
}

function dropEvents() {
  const drop = $("drop");
  const take = (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const files = e.dataTransfer && e.dataTransfer.files;
    if (!files || !files.length) return;
    $("file").files = files;
    chooseFile(files[0]);
  };
  for (const target of [drop, $("viewer")]) {
    target.addEventListener("dragover", (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
    target.addEventListener("dragleave", () => drop.classList.remove("over"));
    target.addEventListener("drop", take);
  }
  // a file dropped anywhere else must not make the browser leave the page
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  $("file").addEventListener("change", (e) => {
    if (e.target.files.length) chooseFile(e.target.files[0]);
  });
}

async function init() {
  viewerEvents();
  dropEvents();
  $("job-form").addEventListener("submit", submit);
  $("tta").addEventListener("change", updateEstimate);
  try {
    const response = await fetch("/api/models");
    page.catalog = await response.json();
  } catch (err) {
    showError(`Could not load the models: ${err.message}`);
    return;
  }
  const { bytes: maxBytes, pixels } = page.catalog.limits;
  $("drop-hint").textContent = `PNG, JPEG, WebP, TIFF or BMP · up to ${bytes(maxBytes)} and ` +
    `${(pixels / 1e6).toFixed(1)} megapixels`;
  $("tile").value = String(page.catalog.default_tile);
  renderScales();
  renderModels();
  document.body.dataset.ready = "true";
}

init();
