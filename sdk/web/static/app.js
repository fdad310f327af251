// stylekit web demo: plain JavaScript, no build step. Talks to the JSON API of sdk/web/app.py.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  photo: null,        // File
  painting: null,     // File (any-painting mode)
  styles: [],         // from GET /api/styles
  maxUpload: null,    // bytes, from GET /api/info
  originalUrl: null,
  paintingUrl: null,
  resultUrl: null,
  busy: false,
  mode: "photo",      // "photo" | "video" | "live"
  clip: null,         // File (video mode)
  clipUrl: null,
  info: null,         // GET /api/info
  live: null,         // the running camera session (startLive)
};

// The mask painted over the photo: a canvas of the photo's shape (at most MASK_MAX_SIDE on its
// longest side; the server brings a mask to the photo's size), transparent where unpainted and
// MASK_COLOUR where painted. Sent as a PNG: white where painted (the style), black elsewhere.
const MASK_MAX_SIDE = 2048;
const MASK_COLOUR = "rgb(249 115 22)";
const mask = {
  painted: false,     // anything painted or loaded since the last Clear
  drawing: false,     // a stroke is under way
  last: null,         // the stroke's last point, in canvas pixels
  file: null,         // a loaded mask image, sent as it is when the photo has no preview
};

// ----- small helpers --------------------------------------------------------------------------

function displayName(style) {
  if (style.kind === "arbitrary") return "Any painting";
  const small = new Set(["a", "an", "and", "in", "of", "on", "the", "with"]);
  return style.name.split(/[-_]+/)
    .map((word, i) => (i > 0 && small.has(word) ? word : word.charAt(0).toUpperCase() + word.slice(1)))
    .join(" ");
}

function megabytes(bytes) {
  if (bytes < 1048576) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0)} MB`;
}

function setStatus(text) {
  $("status").textContent = text;
}

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
  setStatus("");
}

function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

function replaceUrl(key, blob) {
  if (state[key]) URL.revokeObjectURL(state[key]);
  state[key] = blob ? URL.createObjectURL(blob) : null;
  return state[key];
}

function selectedStyle() {
  const checked = document.querySelector('input[name="style"]:checked');
  return checked ? state.styles.find((s) => s.name === checked.value) : undefined;
}

// Not an image, or over the server's limit: say so before uploading anything.
function checkFile(file) {
  if (file.type && !file.type.startsWith("image/")) {
    return `“${file.name}” is not an image. Choose a photo (JPEG, PNG or WebP).`;
  }
  if (state.maxUpload && file.size > state.maxUpload) {
    return `“${file.name}” is too large (${megabytes(file.size)}); the limit is ${megabytes(state.maxUpload)}.`;
  }
  return null;
}

// ----- photo and painting uploads -------------------------------------------------------------

function setPhoto(file) {
  clearError();
  const problem = checkFile(file);
  if (problem) {
    showError(problem);
    return;
  }
  state.photo = file;
  $("photo-name").textContent = file.name;
  const img = $("original");
  img.onload = () => {
    img.hidden = false;
    $("original-empty").hidden = true;
    resetMask();
  };
  img.onerror = () => {
    img.hidden = true;
    $("original-empty").hidden = false;
    $("original-empty").textContent = "This browser can't preview the file; it will still be sent.";
    resetMask();
  };
  img.src = replaceUrl("originalUrl", file);
  clearResult("Pick a style and press Stylize.");
  setStatus(`Photo ready: ${file.name}`);
}

function setPainting(file) {
  clearError();
  const problem = checkFile(file);
  if (problem) {
    showError(problem);
    return;
  }
  state.painting = file;
  $("painting-name").textContent = file.name;
  const preview = $("painting-preview");
  preview.onload = () => { preview.hidden = false; };
  preview.onerror = () => { preview.hidden = true; };
  preview.src = replaceUrl("paintingUrl", file);
}

function wireDropzone(zoneId, inputId, onFile) {
  const zone = $(zoneId);
  const input = $(inputId);
  input.addEventListener("change", () => {
    if (input.files && input.files[0]) onFile(input.files[0]);
  });
  ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  }));
  ["dragleave", "dragend"].forEach((type) => zone.addEventListener(type, () => zone.classList.remove("dragging")));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) onFile(file);
  });
}

// ----- styles ---------------------------------------------------------------------------------

// The server paints each thumbnail on first request. Load at most two at a time, in gallery
// order: a browser opens only six connections to a host, and the rest must stay free for the
// person's own Stylize request.
const thumbnailQueue = [];
let thumbnailsLoading = 0;

function loadThumbnail(img, url) {
  thumbnailQueue.push([img, url]);
  pumpThumbnails();
}

function pumpThumbnails() {
  while (thumbnailsLoading < 2 && thumbnailQueue.length > 0) {
    const [img, url] = thumbnailQueue.shift();
    thumbnailsLoading += 1;
    const done = () => {
      thumbnailsLoading -= 1;
      pumpThumbnails();
    };
    img.addEventListener("load", done, { once: true });
    img.addEventListener("error", done, { once: true });
    img.src = url;
  }
}

function renderGallery(styles) {
  const gallery = $("gallery");
  gallery.replaceChildren();
  // The "any painting" mode first, then the styles in the order the server lists them.
  const ordered = [...styles.filter((s) => s.kind === "arbitrary"), ...styles.filter((s) => s.kind !== "arbitrary")];
  for (const style of ordered) {
    const option = document.createElement("div");
    option.className = "style-option" + (style.kind === "arbitrary" ? " is-painting" : "");
    option.dataset.search = [style.name, style.description, ...(style.aliases || [])].join(" ").toLowerCase();

    const input = document.createElement("input");
    input.type = "radio";
    input.name = "style";
    input.value = style.name;
    input.id = `style-${style.name}`;
    input.className = "visually-hidden";

    const label = document.createElement("label");
    label.className = "style-card";
    label.htmlFor = input.id;
    label.title = [style.description, style.license ? `License: ${style.license}` : ""].filter(Boolean).join("\n");
    const img = document.createElement("img");
    loadThumbnail(img, style.thumbnail_url);
    img.alt = "";
    img.width = 112;
    img.height = 112;
    const name = document.createElement("span");
    name.className = "style-name";
    name.textContent = displayName(style);
    label.append(img, name);

    option.append(input, label);
    gallery.append(option);
  }
  gallery.setAttribute("aria-busy", "false");
}

function onStyleChange() {
  const style = selectedStyle();
  if (!style) return;
  clearError();
  $("painting-field").hidden = style.kind !== "arbitrary";

  const partners = style.blend_group
    ? state.styles.filter((s) => s.blend_group === style.blend_group && s.name !== style.name)
    : [];
  const toggle = $("blend-toggle");
  toggle.disabled = partners.length === 0;
  if (toggle.disabled) toggle.checked = false;
  $("blend-hint").textContent = partners.length
    ? `Mix ${displayName(style)} with another style of its collection.`
    : "Only styles of one collection can be blended.";
  const select = $("blend-style");
  const previous = select.value;
  select.replaceChildren(...partners.map((s) => new Option(displayName(s), s.name)));
  if (partners.some((s) => s.name === previous)) select.value = previous;
  updateBlend();
  showStyleInfo(style);
  setStatus(`Style: ${displayName(style)}`);
  switchLiveStyle(style);
}

function showStyleInfo(style) {
  $("style-info-thumb").src = style.thumbnail_url;
  $("style-info-name").textContent = displayName(style);
  const about = style.kind === "arbitrary"
    ? "Upload any painting: its colours and brush strokes are copied onto your photo."
    : style.description || "A style of the collection.";
  $("style-info-text").textContent = [about, style.license ? `License: ${style.license}` : ""]
    .filter(Boolean).join(" · ");
  $("style-info").hidden = false;
}

function updateBlend() {
  $("blend-fields").hidden = !$("blend-toggle").checked;
  const mix = Number($("blend-mix").value);
  $("blend-mix-value").textContent = `${mix}% / ${100 - mix}%`;
}

function filterGallery() {
  const needle = $("style-filter").value.trim().toLowerCase();
  for (const option of document.querySelectorAll(".style-option")) {
    option.hidden = needle !== "" && !option.dataset.search.includes(needle);
  }
}

// ----- regions: the mask painted over the photo ---------------------------------------------

// A new photo (or none): an empty mask of its shape.
function resetMask() {
  const canvas = $("mask-canvas");
  const img = $("original");
  const w = img.naturalWidth;
  const h = img.naturalHeight;
  const fit = w && h ? Math.min(1, MASK_MAX_SIDE / Math.max(w, h)) : 1;
  canvas.width = w ? Math.max(1, Math.round(w * fit)) : 1; // setting the size clears the canvas
  canvas.height = h ? Math.max(1, Math.round(h * fit)) : 1;
  mask.painted = false;
  mask.file = null;
  updateMask();
}

// Show the canvas (and its controls) where they apply, laid exactly over the photo as drawn.
function updateMask() {
  const on = $("mask-toggle").checked && state.mode === "photo";
  $("mask-fields").hidden = !on;
  const canvas = $("mask-canvas");
  const img = $("original");
  canvas.hidden = !on || img.hidden || !img.naturalWidth;
  if (canvas.hidden) return;
  // The image fills its frame with object-fit: contain; the canvas covers the picture itself.
  const fit = Math.min(img.clientWidth / img.naturalWidth, img.clientHeight / img.naturalHeight);
  const w = img.naturalWidth * fit;
  const h = img.naturalHeight * fit;
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  canvas.style.left = `${img.offsetLeft + (img.clientWidth - w) / 2}px`;
  canvas.style.top = `${img.offsetTop + (img.clientHeight - h) / 2}px`;
}

// Where a pointer event falls on the canvas, in canvas pixels, and canvas pixels per CSS pixel.
function canvasPoint(event) {
  const canvas = $("mask-canvas");
  const rect = canvas.getBoundingClientRect();
  const k = canvas.width / rect.width;
  return { x: (event.clientX - rect.left) * k, y: (event.clientY - rect.top) * (canvas.height / rect.height), k };
}

function brush(from, to) {
  const ctx = $("mask-canvas").getContext("2d");
  const erase = $("brush-erase").checked;
  const width = Number($("brush-size").value) * to.k;
  ctx.globalCompositeOperation = erase ? "destination-out" : "source-over";
  ctx.strokeStyle = MASK_COLOUR;
  ctx.fillStyle = MASK_COLOUR;
  ctx.lineWidth = width;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  if (from === to) {
    ctx.arc(to.x, to.y, width / 2, 0, 2 * Math.PI);
    ctx.fill();
  } else {
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  }
  ctx.globalCompositeOperation = "source-over";
  if (!erase) mask.painted = true;
  mask.file = null; // what is sent is what the canvas shows now
}

function wireMaskCanvas() {
  const canvas = $("mask-canvas");
  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    mask.drawing = true;
    mask.last = canvasPoint(event);
    brush(mask.last, mask.last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!mask.drawing) return;
    const point = canvasPoint(event);
    brush(mask.last, point);
    mask.last = point;
  });
  const end = () => {
    if (!mask.drawing) return;
    mask.drawing = false;
    setStatus("Mask painted: the style goes where you painted.");
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("lostpointercapture", end);
}

function clearMask() {
  const canvas = $("mask-canvas");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  mask.painted = false;
  mask.file = null;
  setStatus("Mask cleared.");
}

function invertMask() {
  const canvas = $("mask-canvas");
  const ctx = canvas.getContext("2d");
  // xor with a full cover: alpha becomes 1 - alpha, soft edges included.
  ctx.globalCompositeOperation = "xor";
  ctx.fillStyle = MASK_COLOUR;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.globalCompositeOperation = "source-over";
  mask.painted = true;
  mask.file = null;
  setStatus("Mask inverted.");
}

// A mask image: checked for the photo's shape (as the server does, within 2%), then drawn on
// the canvas (luminance times alpha), where the brush can change it.
function loadMask(file) {
  clearError();
  const problem = checkFile(file);
  if (problem) return showError(problem.replace("Choose a photo", "Choose a mask image"));
  const img = $("original");
  if (!img.naturalWidth) {
    // No preview to paint on: the file itself is sent, and the server checks it.
    mask.file = file;
    mask.painted = true;
    setStatus(`Mask ready: ${file.name}`);
    return;
  }
  const url = URL.createObjectURL(file);
  const picture = new Image();
  picture.onload = () => {
    URL.revokeObjectURL(url);
    const expected = (picture.naturalWidth * img.naturalHeight) / img.naturalWidth;
    if (Math.abs(picture.naturalHeight - expected) > Math.max(1, 0.02 * expected)) {
      showError(`The mask “${file.name}” (${picture.naturalWidth} × ${picture.naturalHeight}) does not have `
        + `the photo's shape (${img.naturalWidth} × ${img.naturalHeight}).`);
      return;
    }
    const canvas = $("mask-canvas");
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(picture, 0, 0, canvas.width, canvas.height);
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const d = pixels.data;
    for (let i = 0; i < d.length; i += 4) {
      const luma = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      d[i] = 249; d[i + 1] = 115; d[i + 2] = 22; // MASK_COLOUR
      d[i + 3] = Math.round((luma * d[i + 3]) / 255);
    }
    ctx.putImageData(pixels, 0, 0);
    mask.painted = true;
    mask.file = null;
    setStatus(`Mask loaded from ${file.name}; paint to change it.`);
  };
  picture.onerror = () => {
    URL.revokeObjectURL(url);
    showError(`“${file.name}” is not an image this browser can read. Choose a mask image (PNG, JPEG).`);
  };
  picture.src = url;
}

// The canvas as the mask the server reads: white where painted, black elsewhere, soft edges grey.
function exportMask() {
  const src = $("mask-canvas");
  const out = document.createElement("canvas");
  out.width = src.width;
  out.height = src.height;
  const ctx = out.getContext("2d");
  ctx.drawImage(src, 0, 0);
  ctx.globalCompositeOperation = "source-in";
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.globalCompositeOperation = "destination-over";
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, out.width, out.height);
  return new Promise((resolve) => out.toBlob(resolve, "image/png"));
}

// Adds the mask (and the style outside it) to the form; a sentence when there is nothing to send.
async function appendMask(form) {
  const outside = $("outside").value;
  if (!mask.painted && !outside) {
    return "Paint over the photo where the style should go (or load a mask image), "
      + "or turn off “Paint only part of the photo”.";
  }
  if (mask.file) {
    form.append("mask", mask.file, mask.file.name);
  } else if ($("original").naturalWidth) {
    form.append("mask", await exportMask(), "mask.png");
  } else {
    return "This browser can't show the photo, so no mask can be painted on it; load a mask image instead.";
  }
  if (outside) form.append("outside", outside);
  return null;
}

function fillOutside(styles) {
  const select = $("outside");
  const keep = new Option("Keep the photo", "");
  const others = styles.filter((s) => s.kind !== "arbitrary").map((s) => new Option(displayName(s), s.name));
  select.replaceChildren(keep, ...others);
}

// ----- stylize --------------------------------------------------------------------------------

function clearResult(message) {
  const img = $("result");
  img.hidden = true;
  img.removeAttribute("src");
  const video = $("result-video");
  video.hidden = true;
  video.removeAttribute("src");
  video.load();
  replaceUrl("resultUrl", null);
  $("result-empty").hidden = false;
  $("result-empty").textContent = message;
  $("result-caption").textContent = "Result";
  $("download").hidden = true;
}

function setBusy(busy, label) {
  state.busy = busy;
  const button = $("stylize");
  button.disabled = busy;
  button.setAttribute("aria-busy", String(busy));
  const idle = state.mode === "video" ? "Stylize video" : "Stylize";
  button.querySelector(".primary-label").textContent = busy ? "Painting…" : idle;
  $("progress").hidden = !busy;
  $("result-frame").setAttribute("aria-busy", String(busy));
  if (busy) {
    $("result-empty").hidden = true;
    setStatus(`Painting your ${state.mode === "video" ? "clip" : "photo"} with ${label}…`);
    // In the one-column layout the result is below the controls: bring it into view.
    if (window.matchMedia("(max-width: 899px)").matches) {
      $("stage").scrollIntoView({ behavior: "smooth", block: "start" });
    }
  }
}

function fileNameFrom(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const match = /filename="?([^";]+)"?/i.exec(header);
  return match ? match[1] : fallback;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.message) return body.message;
  } catch (_) {
    // not JSON: fall through to a generic message
  }
  if (response.status === 502 || response.status === 503 || response.status === 504) {
    return "The style server is not answering right now. Try again in a moment.";
  }
  return `The server could not stylize this photo (HTTP ${response.status}).`;
}

// The style and the options a photo and a video share; returns how to name the style to a person.
function appendOptions(form, style) {
  let label = displayName(style);
  if (style.kind === "arbitrary") {
    form.append("style", style.name);
    form.append("style_image", state.painting, state.painting.name);
    label = `the style of ${state.painting.name}`;
  } else if ($("blend-toggle").checked && $("blend-style").value) {
    const mix = Number($("blend-mix").value) / 100;
    const other = $("blend-style").value;
    form.append("style", `${style.name}=${mix.toFixed(2)},${other}=${(1 - mix).toFixed(2)}`);
    label = `${displayName(style)} + ${displayName(state.styles.find((s) => s.name === other))}`;
  } else {
    form.append("style", style.name);
  }
  form.append("strength", String(Number($("strength").value) / 100));
  form.append("preserve_color", String($("preserve-color").checked));
  form.append("max_side", $("max-side").value);
  const scale = Number($("scale").value);
  if (scale !== 1) form.append("scale", String(scale)); // left out at 1: today's request exactly
  return label;
}

async function stylize(event) {
  event.preventDefault();
  if (state.busy) return;
  if (state.mode === "video") return stylizeVideo();
  if (state.mode === "live") return;
  clearError();
  const style = selectedStyle();
  if (!state.photo) return showError("Choose a photo first.");
  if (!style) return showError("Pick a style.");
  if (style.kind === "arbitrary" && !state.painting) {
    return showError("Choose a painting: its style is copied onto your photo.");
  }

  const form = new FormData();
  form.append("image", state.photo, state.photo.name);
  let label = appendOptions(form, style);
  const format = document.querySelector('input[name="format"]:checked').value;
  form.append("format", format);
  if ($("mask-toggle").checked) {
    const problem = await appendMask(form);
    if (problem) return showError(problem);
    const outside = state.styles.find((s) => s.name === $("outside").value);
    label = outside ? `${label}, ${displayName(outside)} outside` : `${label}, where painted`;
  }

  setBusy(true, label);
  const started = performance.now();
  try {
    let response;
    try {
      response = await fetch("/api/stylize", { method: "POST", body: form });
    } catch (_) {
      throw new Error("Can't reach the stylekit server. Check that it is still running.");
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    const blob = await response.blob();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const extension = format === "jpeg" ? "jpg" : "png";
    const name = fileNameFrom(response, `stylized.${extension}`);
    const url = replaceUrl("resultUrl", blob);
    const img = $("result");
    const download = $("download");
    download.href = url;
    download.download = name;
    download.title = name;
    $("download-label").textContent = `Download ${format === "jpeg" ? "JPEG" : "PNG"}`;
    $("result-caption").textContent = label;
    // Result, download button and "Done" appear together, once the image is on screen.
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("The server's answer is not an image the browser can show."));
      img.src = url;
    });
    img.hidden = false;
    $("result-empty").hidden = true;
    download.hidden = false;
    setStatus(`Done in ${seconds} s · ${img.naturalWidth} × ${img.naturalHeight} px`);
  } catch (error) {
    clearResult("No result yet.");
    showError(error.message);
  } finally {
    setBusy(false, label);
  }
}

// ----- modes: photo, video, live camera ------------------------------------------------------

function setMode(mode) {
  if (state.busy) {
    // A video is on its way: stay in its mode until it is done.
    $(`mode-${state.mode}`).checked = true;
    return;
  }
  if (state.live) stopLive("");
  state.mode = mode;
  clearError();
  $("photo-step").hidden = mode !== "photo";
  $("video-step").hidden = mode !== "video";
  $("live-step").hidden = mode !== "live";
  // Live frames take the style and the stroke size; a file's other options make no sense there.
  for (const field of $("adjust-step").querySelectorAll(":scope > .field, :scope > .field-grid")) {
    if (field.id !== "scale-field" && field.id !== "temporal-field") field.hidden = mode === "live";
  }
  $("blend-fields").hidden = mode === "live" || !$("blend-toggle").checked;
  $("mask-toggle-field").hidden = mode !== "photo";
  $("submit-bar").hidden = mode === "live";
  $("temporal-field").hidden = mode !== "video";
  $("format-field").hidden = mode !== "photo";
  $("video-progress-box").hidden = true;
  $("live-stats").hidden = true;
  $("stylize").querySelector(".primary-label").textContent = mode === "video" ? "Stylize video" : "Stylize";
  const original = $("original");
  const originalVideo = $("original-video");
  original.hidden = mode !== "photo" || !state.photo;
  originalVideo.hidden = mode === "photo" || (mode === "video" && !state.clip);
  if (mode === "video" && state.clip) originalVideo.src = state.clipUrl;
  $("original-empty").hidden = !(original.hidden && originalVideo.hidden);
  $("original-empty").textContent = {
    photo: "Your photo appears here.", video: "Your clip appears here.", live: "Your camera appears here.",
  }[mode];
  const prompt = {
    photo: "Pick a style and press Stylize.",
    video: "Pick a style and press Stylize video.",
    live: "Pick a style and press Start camera.",
  }[mode];
  clearResult(prompt);
  updateMask();
  setStatus("");
}

function setClip(file) {
  clearError();
  if (file.type && !file.type.startsWith("video/")) {
    return showError(`“${file.name}” is not a video. Choose a clip (MP4, MOV or WebM).`);
  }
  const limit = state.info && state.info.max_video_bytes;
  if (limit && file.size > limit) {
    return showError(`“${file.name}” is too large (${megabytes(file.size)}); the limit is ${megabytes(limit)}.`);
  }
  state.clip = file;
  $("video-name").textContent = file.name;
  const video = $("original-video");
  video.src = replaceUrl("clipUrl", file);
  video.hidden = false;
  video.controls = true;
  $("original-empty").hidden = true;
  clearResult("Pick a style and press Stylize video.");
  setStatus(`Clip ready: ${file.name}`);
}

function showProgress(job) {
  const total = job.frames_total;
  const percent = job.state === "done" ? 100 : total ? Math.min(99, Math.floor((100 * job.frames_done) / total)) : 0;
  $("video-progress").value = percent;
  const of = total ? ` of ${total}` : "";
  const eta = job.eta_s !== null && job.state === "running" ? ` · ${Math.ceil(job.eta_s)} s left` : "";
  const speed = job.fps ? ` · ${job.fps.toFixed(1)} frames/s` : "";
  const words = job.state === "queued" ? "Waiting for the previous video…" : `${percent}% · frame ${job.frames_done}${of}`;
  $("video-progress-text").textContent = `${words}${speed}${eta}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function stylizeVideo() {
  clearError();
  const style = selectedStyle();
  if (!state.clip) return showError("Choose a clip first.");
  if (!style) return showError("Pick a style.");
  if (style.kind === "arbitrary" && !state.painting) {
    return showError("Choose a painting: its style is copied onto your clip.");
  }
  const form = new FormData();
  form.append("video", state.clip, state.clip.name);
  const label = appendOptions(form, style);
  form.append("temporal", String(Number($("temporal").value) / 100));

  setBusy(true, label);
  $("video-progress-box").hidden = false;
  showProgress({ state: "queued", frames_done: 0, frames_total: null, fps: 0, eta_s: null });
  try {
    let response;
    try {
      response = await fetch("/api/videos", { method: "POST", body: form });
    } catch (_) {
      throw new Error("Can't reach the stylekit server. Check that it is still running.");
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    const { id } = await response.json();
    let job;
    for (;;) {
      const poll = await fetch(`/api/videos/${encodeURIComponent(id)}`);
      if (!poll.ok) throw new Error(await errorMessage(poll));
      job = await poll.json();
      showProgress(job);
      if (job.state === "done") break;
      if (job.state === "failed") throw new Error(job.error ? job.error.message : "The video could not be stylized.");
      await sleep(400);
    }
    // The result is sent once: keep it as a blob for the player and the download both.
    const result = await fetch(`/api/videos/${encodeURIComponent(id)}/result`);
    if (!result.ok) throw new Error(await errorMessage(result));
    const blob = await result.blob();
    const name = fileNameFrom(result, "stylized.mp4");
    const url = replaceUrl("resultUrl", blob);
    const video = $("result-video");
    video.src = url;
    video.hidden = false;
    $("result-empty").hidden = true;
    $("result-caption").textContent = label;
    const download = $("download");
    download.href = url;
    download.download = name;
    download.title = name;
    $("download-label").textContent = "Download MP4";
    download.hidden = false;
    setStatus(`Done · ${job.frames_done} frames`);
  } catch (error) {
    $("video-progress-box").hidden = true;
    clearResult("No result yet.");
    showError(error.message);
  } finally {
    setBusy(false, label);
  }
}

// Live camera: one frame in flight at a time, so latency never piles up; at most the server's
// frames/s; the measured rate is shown, and a style picked in the gallery is sent at once.
async function startLive() {
  if (state.live) return;
  clearError();
  const style = selectedStyle();
  if (!style) return showError("Pick a style first.");
  if (style.kind === "arbitrary") return showError("Any painting is not available live; pick a style of the collection.");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return showError("This browser gives no camera to this page (it needs https or localhost).");
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false });
  } catch (error) {
    return showError(`The camera could not be opened: ${error.message || error.name}.`);
  }
  const camera = $("original-video");
  camera.controls = false;
  camera.srcObject = stream;
  camera.hidden = false;
  $("original-empty").hidden = true;
  await camera.play().catch(() => {});
  const fps = (state.info && state.info.live_fps) || 10;
  const maxSide = Math.min(480, (state.info && state.info.live_max_side) || 480);
  const live = {
    stream, style: style.name, canvas: document.createElement("canvas"), frames: 0, arrivals: [],
    interval: 1000 / fps, maxSide, lastSent: 0, meta: null, timer: null, closing: false,
  };
  state.live = live;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = new URLSearchParams({ style: style.name });
  const scale = Number($("scale").value);
  if (scale !== 1) query.set("scale", String(scale));
  const ws = new WebSocket(`${scheme}://${location.host}/api/live?${query}`);
  ws.binaryType = "blob";
  live.ws = ws;
  $("live-start").disabled = true;
  $("live-stop").disabled = false;
  $("live-stats").hidden = false;
  $("live-style").textContent = displayName(style);
  $("result-empty").textContent = "Connecting…";
  ws.onopen = () => sendFrame(live);
  ws.onmessage = (event) => onLiveMessage(live, event.data);
  ws.onclose = (event) => {
    if (state.live !== live) return;
    // An error message, if any, was shown when it arrived; this says how the stream ended.
    let why = "The live connection closed.";
    if (event.code === 1000) why = "The live camera was stopped by the server (no frames for a while).";
    if (event.code === 1006 && live.frames === 0) {
      why = "The server did not accept the live connection.";
      if ($("error").hidden) showError(why);
    }
    stopLive(why, true);
  };
  setStatus(`Live with ${displayName(style)}`);
}

function scheduleFrame(live, delay) {
  clearTimeout(live.timer);
  live.timer = setTimeout(() => sendFrame(live), Math.max(0, delay));
}

function sendFrame(live) {
  if (state.live !== live || live.ws.readyState !== WebSocket.OPEN) return;
  const camera = $("original-video");
  const w = camera.videoWidth;
  const h = camera.videoHeight;
  if (!w || !h) return scheduleFrame(live, 100); // the camera has not delivered a frame yet
  const scale = Math.min(1, live.maxSide / Math.max(w, h));
  live.canvas.width = Math.round(w * scale);
  live.canvas.height = Math.round(h * scale);
  live.canvas.getContext("2d").drawImage(camera, 0, 0, live.canvas.width, live.canvas.height);
  live.lastSent = performance.now();
  live.canvas.toBlob((blob) => {
    if (blob && state.live === live && live.ws.readyState === WebSocket.OPEN) live.ws.send(blob);
  }, "image/jpeg", 0.8);
}

function nextFrame(live) {
  // The next frame when this one is answered, but not before the server's rate allows.
  scheduleFrame(live, live.lastSent + live.interval - performance.now());
}

function onLiveMessage(live, data) {
  if (state.live !== live) return;
  if (typeof data === "string") {
    const message = JSON.parse(data);
    if (message.error) {
      showError(message.message);
      nextFrame(live); // a bad frame or style: the connection goes on (the server closes it if not)
    } else if (message.dropped) {
      scheduleFrame(live, message.retry_after_ms);
    } else if (message.frame !== undefined) {
      live.meta = message;
    }
    return;
  }
  const now = performance.now();
  live.frames += 1;
  live.arrivals.push(now);
  while (live.arrivals.length > 1 && now - live.arrivals[0] > 3000) live.arrivals.shift();
  const span = (live.arrivals[live.arrivals.length - 1] - live.arrivals[0]) / 1000;
  const rate = span > 0 ? (live.arrivals.length - 1) / span : 0;
  const img = $("result");
  const url = replaceUrl("resultUrl", data);
  img.onload = null;
  img.src = url;
  img.hidden = false;
  $("result-empty").hidden = true;
  const style = live.meta ? live.meta.style : live.style;
  const scale = live.meta && live.meta.scale !== undefined ? live.meta.scale : 1;
  // What the page shows comes from the server's answer: the style and stroke size of each frame.
  img.dataset.style = style;
  img.dataset.scale = String(scale);
  $("live-scale").textContent = `${scale}×`;
  img.dataset.frame = String(live.frames);
  const info = state.styles.find((s) => s.name === style);
  $("live-fps").textContent = rate.toFixed(1);
  $("live-frames").textContent = String(live.frames);
  $("live-style").textContent = info ? displayName(info) : style;
  $("result-caption").textContent = `Live · ${info ? displayName(info) : style}`;
  nextFrame(live);
}

function switchLiveStyle(style) {
  const live = state.live;
  if (!live || style.kind === "arbitrary") return;
  live.style = style.name;
  if (live.ws.readyState === WebSocket.OPEN) live.ws.send(JSON.stringify({ style: style.name }));
}

// The stroke size slider moved while the camera runs: the next frame is painted at the new size.
function switchLiveScale() {
  const live = state.live;
  if (!live || live.ws.readyState !== WebSocket.OPEN) return;
  live.ws.send(JSON.stringify({ scale: Number($("scale").value) }));
}

function stopLive(message, closedByServer = false) {
  const live = state.live;
  if (!live) return;
  state.live = null;
  clearTimeout(live.timer);
  if (!closedByServer) live.ws.close(1000);
  live.stream.getTracks().forEach((track) => track.stop());
  const camera = $("original-video");
  camera.srcObject = null;
  camera.hidden = true;
  $("original-empty").hidden = false;
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
  if (message) setStatus(message);
}

// ----- start ----------------------------------------------------------------------------------

async function loadInfo() {
  try {
    const response = await fetch("/api/info");
    if (response.ok) {
      const info = await response.json();
      state.info = info;
      state.maxUpload = info.max_upload_bytes;
      $("photo-hint").textContent = `JPEG, PNG or WebP · up to ${megabytes(info.max_upload_bytes)}`;
      $("video-hint").textContent = `MP4, MOV or WebM · up to ${megabytes(info.max_video_bytes)}, `
        + `${info.max_video_frames} frames`;
      if (!info.video) {
        // A TorchServe backend (or no video extra): say why instead of failing later.
        $("mode-video").disabled = true;
        $("mode-live").disabled = true;
        $("mode-hint").textContent = info.backend === "server"
          ? "Video and the live camera need the local engine (this server uses TorchServe)."
          : "Video and the live camera need the video extra: pip install 'stylekit[video]'.";
        $("mode-hint").hidden = false;
      }
    }
  } catch (_) {
    // The limits are a courtesy; the server checks them anyway.
  }
}

async function loadStyles() {
  try {
    const response = await fetch("/api/styles");
    if (!response.ok) throw new Error(await errorMessage(response));
    state.styles = await response.json();
    renderGallery(state.styles);
    fillOutside(state.styles);
  } catch (error) {
    const message = error instanceof TypeError ? "Can't reach the stylekit server." : error.message;
    $("gallery-message").textContent = `The styles could not be loaded: ${message}`;
    showError(`The styles could not be loaded: ${message}`);
  }
}

function start() {
  wireDropzone("photo-drop", "photo-input", setPhoto);
  wireDropzone("painting-drop", "painting-input", setPainting);
  // A file dropped next to a drop zone must not make the browser leave the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  $("gallery").addEventListener("change", onStyleChange);
  $("style-filter").addEventListener("input", filterGallery);
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = `${$("strength").value}%`;
  });
  $("blend-toggle").addEventListener("change", updateBlend);
  $("blend-mix").addEventListener("input", updateBlend);
  $("controls").addEventListener("submit", stylize);
  wireDropzone("video-drop", "video-input", setClip);
  document.querySelectorAll('input[name="mode"]').forEach((input) => input.addEventListener("change", () => {
    if (input.checked) setMode(input.value);
  }));
  $("temporal").addEventListener("input", () => {
    $("temporal-value").textContent = `${$("temporal").value}%`;
  });
  $("scale").addEventListener("input", () => {
    $("scale-value").textContent = `${Number($("scale").value)}×`;
  });
  $("scale").addEventListener("change", switchLiveScale); // once the slider is let go
  $("mask-toggle").addEventListener("change", updateMask);
  $("brush-size").addEventListener("input", () => {
    $("brush-size-value").textContent = `${$("brush-size").value} px`;
  });
  $("mask-clear").addEventListener("click", clearMask);
  $("mask-invert").addEventListener("click", invertMask);
  $("mask-input").addEventListener("change", () => {
    const input = $("mask-input");
    if (input.files && input.files[0]) loadMask(input.files[0]);
    input.value = ""; // the same file again is a change too
  });
  wireMaskCanvas();
  new ResizeObserver(updateMask).observe($("original").parentElement);
  $("live-start").addEventListener("click", startLive);
  $("live-stop").addEventListener("click", () => stopLive("Camera stopped."));
  loadInfo();
  loadStyles();
}

start();
