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
  };
  img.onerror = () => {
    img.hidden = true;
    $("original-empty").hidden = false;
    $("original-empty").textContent = "This browser can't preview the file; it will still be sent.";
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

// ----- stylize --------------------------------------------------------------------------------

function clearResult(message) {
  const img = $("result");
  img.hidden = true;
  img.removeAttribute("src");
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
  button.querySelector(".primary-label").textContent = busy ? "Painting…" : "Stylize";
  $("progress").hidden = !busy;
  $("result-frame").setAttribute("aria-busy", String(busy));
  if (busy) {
    $("result-empty").hidden = true;
    setStatus(`Painting your photo with ${label}…`);
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

async function stylize(event) {
  event.preventDefault();
  if (state.busy) return;
  clearError();
  const style = selectedStyle();
  if (!state.photo) return showError("Choose a photo first.");
  if (!style) return showError("Pick a style.");
  if (style.kind === "arbitrary" && !state.painting) {
    return showError("Choose a painting: its style is copied onto your photo.");
  }

  const form = new FormData();
  form.append("image", state.photo, state.photo.name);
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
  const format = document.querySelector('input[name="format"]:checked').value;
  form.append("format", format);
  form.append("max_side", $("max-side").value);

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

// ----- start ----------------------------------------------------------------------------------

async function loadInfo() {
  try {
    const response = await fetch("/api/info");
    if (response.ok) {
      const info = await response.json();
      state.maxUpload = info.max_upload_bytes;
      $("photo-hint").textContent = `JPEG, PNG or WebP · up to ${megabytes(info.max_upload_bytes)}`;
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
  loadInfo();
  loadStyles();
}

start();
