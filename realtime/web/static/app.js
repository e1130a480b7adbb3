// The page of `python -m realtime.web`: three tabs over the server's API.
// Draw: the canvas is posted to /api/detect after each pause in the drawing.
// Webcam: camera frames go over the WebSocket /ws/live, one at a time: the next frame is
//   sent when the last one's answer is back, so the rate is what the server keeps up with.
// Upload: the file is posted to /api/annotate; the annotated image or video comes back.
"use strict";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 250; // a pause this long in the drawing reads it
const CAM_MAX_SIDE = 640; // camera frames are scaled down to this before they are sent
const CAM_JPEG_QUALITY = 0.8;

// ---- tabs --------------------------------------------------------------------------

const TABS = ["draw", "webcam", "upload"];

function selectTab(name) {
  if (!TABS.includes(name)) name = "draw";
  for (const t of TABS) {
    $(`tab-${t}`).setAttribute("aria-selected", String(t === name));
    $(`panel-${t}`).hidden = t !== name;
  }
  if (name !== "webcam") camera.stop();
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

for (const t of TABS) $(`tab-${t}`).addEventListener("click", () => selectTab(t));
window.addEventListener("hashchange", () => selectTab(location.hash.slice(1)));

// ---- drawing readings over an image ----------------------------------------------------

function colourFor(conf) {
  if (conf >= 0.9) return "#2da44e";
  if (conf >= 0.7) return "#d4a72c";
  return "#e36209";
}

function label(ctx, text, x, y, colour, size) {
  const w = ctx.measureText(text).width + 6;
  const top = y - size - 4 < 0 ? y + 2 : y - size - 4;
  ctx.fillStyle = colour;
  ctx.fillRect(x, top, w, size + 4);
  ctx.fillStyle = "#000";
  ctx.fillText(text, x + 3, top + size);
}

// Boxes, digits and numbers of one JSON line, in a canvas whose pixels are `scale`
// times the frame's.
function drawRecord(ctx, record, scale) {
  ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  if (!record || !record.detections) return;
  const size = Math.max(13, Math.round(ctx.canvas.height / 36));
  ctx.font = `bold ${size}px system-ui, sans-serif`;
  for (const d of record.detections) {
    const [x, y, w, h] = d.box.map((v) => v * scale);
    const colour = colourFor(d.confidence);
    ctx.strokeStyle = colour;
    ctx.lineWidth = Math.max(2, size / 7);
    ctx.strokeRect(x, y, w, h);
    let text = `${d.digit} ${Math.round(100 * d.confidence)}%`;
    // dense rows: a label wider than its digit would cover the neighbours' (as the window does)
    if (ctx.measureText(text).width > w + 8) text = String(d.digit);
    label(ctx, text, x, y, colour, size);
  }
  for (const n of record.numbers || []) {
    if (n.digits.length < 2) continue;
    const [x, y, w, h] = n.box.map((v) => v * scale);
    ctx.strokeStyle = "#1f6feb";
    ctx.lineWidth = 1;
    ctx.strokeRect(x - 4, y - 4, w + 8, h + 8);
    label(ctx, n.value, x, y + h + size + 10, "#9cc3ff", size);
  }
}

function numbersText(record) {
  const values = (record.numbers || []).map((n) => n.value);
  return values.length ? values.join(" ") : "(no digits)";
}

async function errorOf(response) {
  try {
    const body = await response.json();
    return body.error || `HTTP ${response.status}`;
  } catch (e) {
    return `HTTP ${response.status}`;
  }
}

// ---- Draw ------------------------------------------------------------------------------

const draw = {
  canvas: $("draw-canvas"),
  overlay: $("draw-overlay"),
  strokes: 0, // strokes since the last clear: an empty canvas is not sent
  epoch: 0, // bumped by Clear: answers about an older drawing are ignored
  drawing: false,
  last: null,
  timer: null,
  inFlight: false,
  again: false,

  init() {
    this.ctx = this.canvas.getContext("2d");
    this.octx = this.overlay.getContext("2d");
    this.clear();
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => this.down(e));
    c.addEventListener("pointermove", (e) => this.move(e));
    c.addEventListener("pointerup", (e) => this.up(e));
    c.addEventListener("pointercancel", (e) => this.up(e));
    $("draw-clear").addEventListener("click", () => this.clear());
  },

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    const width = Number($("draw-pen").value);
    // a pen's pressure varies the stroke around the chosen width
    const p = e.pointerType === "pen" && e.pressure > 0 ? 0.6 + 0.8 * e.pressure : 1;
    return {
      x: ((e.clientX - r.left) * this.canvas.width) / r.width,
      y: ((e.clientY - r.top) * this.canvas.height) / r.height,
      w: width * p,
    };
  },

  segment(a, b) {
    const ctx = this.ctx;
    ctx.strokeStyle = "#111";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = b.w;
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    ctx.stroke();
  },

  down(e) {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    this.drawing = true;
    this.last = this.point(e);
    this.segment(this.last, this.last);
    this.strokes += 1;
    this.schedule();
  },

  move(e) {
    if (!this.drawing) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = this.point(ev);
      this.segment(this.last, p);
      this.last = p;
    }
    this.schedule();
  },

  up(e) {
    if (!this.drawing) return;
    this.drawing = false;
    if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    this.schedule();
  },

  clear() {
    this.ctx.fillStyle = "#fff";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.octx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    this.strokes = 0;
    this.epoch += 1;
    clearTimeout(this.timer);
    $("draw-reading").textContent = "-";
    $("draw-ms").textContent = "";
    $("draw-bars").replaceChildren();
  },

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.read(), DEBOUNCE_MS);
  },

  async read() {
    if (this.strokes === 0) return;
    if (this.inFlight) {
      this.again = true; // one more read when this one is back, not a queue
      return;
    }
    this.inFlight = true;
    const epoch = this.epoch;
    try {
      const blob = await new Promise((ok) => this.canvas.toBlob(ok, "image/png"));
      const form = new FormData();
      form.append("file", blob, "drawing.png");
      const response = await fetch("/api/detect?probs=true", { method: "POST", body: form });
      if (!response.ok) throw new Error(await errorOf(response));
      const record = await response.json();
      if (epoch === this.epoch) this.show(record);
    } catch (err) {
      if (epoch === this.epoch) $("draw-reading").textContent = `error: ${err.message}`;
    } finally {
      this.inFlight = false;
      if (this.again) {
        this.again = false;
        this.read();
      }
    }
  },

  show(record) {
    drawRecord(this.octx, record, 1);
    $("draw-reading").textContent = numbersText(record);
    $("draw-ms").textContent = `${record.ms.toFixed(1)} ms`;
    const cards = record.detections.map((d, i) => barCard(d, i));
    $("draw-bars").replaceChildren(...cards);
  },
};

// One detection's ten probabilities as a bar chart.
function barCard(det, index) {
  const card = document.createElement("div");
  card.className = "bar-card";
  card.dataset.digit = String(det.digit);
  const title = document.createElement("h3");
  title.textContent = `#${index + 1}: ${det.digit} (${Math.round(100 * det.confidence)}%)`;
  const chart = document.createElement("div");
  chart.className = "bar-chart";
  const labels = document.createElement("div");
  labels.className = "bar-labels";
  (det.probs || []).forEach((p, digit) => {
    const bar = document.createElement("div");
    bar.className = digit === det.digit ? "bar top" : "bar";
    bar.style.height = `${Math.max(1, Math.round(100 * p))}%`;
    bar.title = `${digit}: ${(100 * p).toFixed(1)}%`;
    chart.append(bar);
    const l = document.createElement("span");
    l.textContent = String(digit);
    labels.append(l);
  });
  card.append(title, chart, labels);
  return card;
}

// ---- Webcam ----------------------------------------------------------------------------

const camera = {
  video: $("cam-video"),
  overlay: $("cam-overlay"),
  grab: document.createElement("canvas"),
  stream: null,
  ws: null,
  running: false,
  inFlight: false,
  sentAt: 0,
  answers: [], // arrival times of the last second's answers, for the FPS

  init() {
    this.octx = this.overlay.getContext("2d");
    $("cam-start").addEventListener("click", () => this.start());
    $("cam-stop").addEventListener("click", () => this.stop());
  },

  fail(message) {
    $("cam-error").textContent = message;
    $("cam-error").hidden = false;
    this.stop();
  },

  async start() {
    if (this.running) return;
    $("cam-error").hidden = true;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.fail("this browser gives no camera here: open the page at localhost or over https");
      return;
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false,
      });
    } catch (err) {
      this.fail(`no camera: ${err.message || err.name}`);
      return;
    }
    this.video.srcObject = this.stream;
    await this.video.play();
    this.running = true;
    this.inFlight = false;
    this.answers = [];
    $("cam-start").disabled = true;
    $("cam-stop").disabled = false;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.ws = new WebSocket(`${scheme}://${location.host}/ws/live`);
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => this.send();
    this.ws.onmessage = (e) => this.receive(JSON.parse(e.data));
    this.ws.onclose = () => {
      if (this.running) this.fail("the connection to the server was lost");
    };
  },

  stop() {
    this.running = false;
    if (this.ws) this.ws.close();
    this.ws = null;
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.video.srcObject = null;
    this.octx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    $("cam-start").disabled = false;
    $("cam-stop").disabled = true;
  },

  next() {
    // the next frame the camera delivers (not the one just sent again)
    if (this.video.requestVideoFrameCallback) this.video.requestVideoFrameCallback(() => this.send());
    else requestAnimationFrame(() => this.send());
  },

  async send() {
    if (!this.running || this.inFlight || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const v = this.video;
    if (v.readyState < 2 || !v.videoWidth) {
      this.next();
      return;
    }
    const scale = Math.min(1, CAM_MAX_SIDE / Math.max(v.videoWidth, v.videoHeight));
    this.grab.width = Math.round(v.videoWidth * scale);
    this.grab.height = Math.round(v.videoHeight * scale);
    this.grab.getContext("2d").drawImage(v, 0, 0, this.grab.width, this.grab.height);
    this.inFlight = true;
    this.sentAt = performance.now();
    const blob = await new Promise((ok) => this.grab.toBlob(ok, "image/jpeg", CAM_JPEG_QUALITY));
    if (!this.running || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(await blob.arrayBuffer());
  },

  receive(record) {
    const now = performance.now();
    this.inFlight = false;
    if (!this.running) return;
    this.answers.push(now);
    while (this.answers.length && this.answers[0] < now - 1000) this.answers.shift();
    if (!record.error) {
      const v = this.video;
      this.overlay.width = v.videoWidth;
      this.overlay.height = v.videoHeight;
      drawRecord(this.octx, record, v.videoWidth / record.width);
      $("cam-reading").textContent = numbersText(record);
      $("cam-count").textContent = String(record.detections.length);
      $("cam-ms").textContent = record.server_ms.toFixed(1);
    }
    $("cam-fps").textContent = String(this.answers.length);
    $("cam-latency").textContent = (now - this.sentAt).toFixed(0);
    this.next();
  },
};

// ---- Upload ----------------------------------------------------------------------------

const upload = {
  urls: [],

  init() {
    $("upload-file").addEventListener("change", (e) => {
      if (e.target.files.length) this.send(e.target.files[0]);
    });
    const drop = $("upload-drop");
    drop.addEventListener("dragover", (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer.files.length) this.send(e.dataTransfer.files[0]);
    });
  },

  async send(file) {
    const status = $("upload-status");
    $("upload-error").hidden = true;
    $("upload-result").hidden = true;
    const t0 = performance.now();
    const tick = setInterval(() => {
      status.textContent = `reading ${file.name} ... ${((performance.now() - t0) / 1000).toFixed(0)} s`;
    }, 500);
    status.textContent = `reading ${file.name} ...`;
    try {
      const form = new FormData();
      form.append("file", file, file.name);
      const response = await fetch("/api/annotate", { method: "POST", body: form });
      if (!response.ok) throw new Error(await errorOf(response));
      this.show(file.name, await response.json());
      status.textContent = `${file.name}: read in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
    } catch (err) {
      status.textContent = "";
      $("upload-error").textContent = err.message;
      $("upload-error").hidden = false;
    } finally {
      clearInterval(tick);
    }
  },

  show(name, result) {
    for (const u of this.urls) URL.revokeObjectURL(u);
    const bytes = Uint8Array.from(atob(result.media), (c) => c.charCodeAt(0));
    const media = URL.createObjectURL(new Blob([bytes], { type: result.media_type }));
    const jsonl = URL.createObjectURL(new Blob([result.jsonl], { type: "application/x-ndjson" }));
    this.urls = [media, jsonl];
    const stem = name.replace(/\.[^.]*$/, "");
    const isImage = result.kind === "image";
    $("upload-image").hidden = !isImage;
    $("upload-video").hidden = isImage;
    if (isImage) $("upload-image").src = media;
    else $("upload-video").src = media;
    const link = $("upload-media-link");
    link.href = media;
    link.download = `${stem}_annotated.${isImage ? "png" : "webm"}`;
    link.textContent = `Download annotated ${isImage ? "image" : "video"}`;
    $("upload-jsonl-link").href = jsonl;
    $("upload-jsonl-link").download = `${stem}.jsonl`;
    const lines = result.jsonl.trim().split("\n");
    const last = JSON.parse(lines[lines.length - 1]);
    let reading = numbersText(last);
    if (!isImage) {
      reading = `${reading} (last of ${result.frames} frames${result.truncated ? "; the rest was not read" : ""})`;
    }
    $("upload-reading").textContent = reading;
    $("upload-jsonl").textContent = lines.slice(0, 40).join("\n") + (lines.length > 40 ? "\n..." : "");
    $("upload-result").hidden = false;
  },
};

// ---- health ----------------------------------------------------------------------------

async function showHealth() {
  try {
    const response = await fetch("/api/health");
    const h = await response.json();
    const parts = [];
    const details = [];
    for (const [name, m] of Object.entries(h.models)) {
      if (!m) continue;
      parts.push(`${name} ${m.version.slice(0, 7)}`);
      details.push(`${name}: ${m.path} (${m.backend})`);
    }
    $("health").textContent = `${parts.join(" · ")} · ${h.workers} worker${h.workers > 1 ? "s" : ""}`;
    $("health").title = details.join("\n");
    $("upload-limit").textContent =
      `up to ${Math.round(h.max_upload_bytes / 2 ** 20)} MiB; videos are read up to ${h.max_video_frames} frames`;
  } catch (err) {
    $("health").textContent = "server unreachable";
  }
}

draw.init();
camera.init();
upload.init();
selectTab(location.hash.slice(1));
showHealth();
