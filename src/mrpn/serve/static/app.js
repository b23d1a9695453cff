// mrpn serve page: upload or record a clip, POST /api/predict, then show the video with its
// emotion timeline (stacked class probabilities per window, drawn on a canvas) and a cursor that
// follows playback. No libraries, nothing fetched from outside this server.
"use strict";
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf"];   // matplotlib tab10, as in the PNG of `mrpn predict --plot`
const MOD_NAMES = { v: "face", a: "voice" };
const RECORD_S = 3;
const $ = (id) => document.getElementById(id);
let result = null, mediaUrl = null, busy = false;

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function loadModels() {
  try {
    const r = await (await fetch("/api/models")).json();
    for (const m of r.models) {
      const o = new Option(m.ok ? `${m.name} (${m.kind.toUpperCase()}, ${m.classes.length} classes)` : `${m.name}: refused`, m.name);
      o.disabled = !m.ok;
      o.title = m.error || "";
      $("model").add(o);
    }
    const h = await (await fetch("/api/health")).json();
    $("limit").textContent = Math.round(h.max_upload_mb);
  } catch (e) { status("cannot reach the mrpn server: " + e, true); }
}

async function predict(blob, name) {
  if (busy) return;
  busy = true;
  setButtons(false);
  status(`uploading and predicting ${name} (${(blob.size / 1e6).toFixed(1)} MB) ...`);
  const form = new FormData();
  form.append("file", blob, name);
  try {
    const resp = await fetch("/api/predict?model=" + encodeURIComponent($("model").value || "default"),
                             { method: "POST", body: form });
    const body = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
    if (!resp.ok) throw new Error(body.error || `HTTP ${resp.status}`);
    show(body, blob);
    const t = body.timing || {};
    status(`${name}: predicted in ${(t.total_s || 0).toFixed(2)} s (${body.timeline.length} windows)`);
  } catch (e) {
    status(`${name}: ${e.message}`, true);
  } finally {
    busy = false;
    setButtons(true);
  }
}

function setButtons(on) { for (const id of ["record", "dl-json", "dl-png"]) $(id).disabled = !on; }

function show(res, blob) {
  result = res;
  if (mediaUrl) URL.revokeObjectURL(mediaUrl);
  mediaUrl = URL.createObjectURL(blob);
  const v = $("video");
  v.srcObject = null;
  v.muted = false;
  v.src = mediaUrl;
  $("result").hidden = false;
  $("file-name").textContent = res.file;
  $("file-label").textContent = `${res.label} ${(100 * res.probabilities[res.label]).toFixed(0)} %`;
  $("mods").replaceChildren(...modBadges(res.modalities_used));
  // the server's notes, with "predicted from a only (...)" said in words
  const notes = res.notes.map((n) => n.replace(/^predicted from (v|a) only/,
    (_, m) => `only the ${MOD_NAMES[m]} was used: the ${MOD_NAMES[m]} head predicts`));
  $("notes").replaceChildren(...notes.map((n) => Object.assign(document.createElement("li"), { textContent: n })));
  $("legend").replaceChildren(...res.classes.map((c, k) => {
    const s = document.createElement("span");
    s.innerHTML = `<i style="background:${COLORS[k % 10]}"></i>`;
    s.append(c);
    return s;
  }));
  draw();
}

function modBadges(mods) {
  return ["v", "a"].map((m) => Object.assign(document.createElement("span"),
    { className: "mod " + (mods.includes(m) ? "on" : "off"), textContent: MOD_NAMES[m] }));
}

// The window shown for time t: the one whose centre is nearest (the PNG draws windows at centres).
function windowAt(t) {
  let best = null, bestD = Infinity;
  for (const w of result.timeline) {
    if (!w.probabilities) continue;
    const d = Math.abs((w.start + w.end) / 2 - t);
    if (d < bestD) { bestD = d; best = w; }
  }
  return best;
}

function draw() {
  if (!result) return;
  const cv = $("timeline"), dpr = window.devicePixelRatio || 1;
  const W = cv.clientWidth, H = 150, padL = 34, padR = 16, padB = 20, padT = 6;
  cv.width = W * dpr; cv.height = H * dpr;
  const g = cv.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  const dur = Math.max(result.duration_s, 1e-3), pw = W - padL - padR, ph = H - padB - padT;
  const X = (t) => padL + (Math.min(Math.max(t, 0), dur) / dur) * pw, Y = (p) => padT + (1 - p) * ph;
  g.fillStyle = "#eceff3";
  g.fillRect(padL, padT, pw, ph);
  const tl = result.timeline.filter((w) => w.probabilities);
  // stacked areas: window centres joined linearly, held flat to the ends of the clip
  const pts = tl.map((w) => ({ t: (w.start + w.end) / 2, p: result.classes.map((c) => w.probabilities[c]) }));
  if (pts.length) {
    pts.unshift({ t: 0, p: pts[0].p });
    pts.push({ t: dur, p: pts[pts.length - 1].p });
  }
  const base = pts.map(() => 0);
  result.classes.forEach((c, k) => {
    g.beginPath();
    pts.forEach((q, i) => (i ? g.lineTo : g.moveTo).call(g, X(q.t), Y(base[i] + q.p[k])));
    for (let i = pts.length - 1; i >= 0; i--) g.lineTo(X(pts[i].t), Y(base[i]));
    g.closePath();
    g.fillStyle = COLORS[k % 10];
    g.fill();
    pts.forEach((q, i) => { base[i] += q.p[k]; });
  });
  // windows without input (no face and no usable audio): hatched grey
  g.fillStyle = "rgba(120,120,120,.35)";
  for (const w of result.timeline) if (!w.probabilities) g.fillRect(X(w.start), padT, X(w.end) - X(w.start), ph);
  // axes
  g.fillStyle = "#555"; g.font = "11px system-ui, sans-serif"; g.textAlign = "right";
  for (const p of [0, 0.5, 1]) g.fillText(p.toFixed(1), padL - 5, Y(p) + 4);
  g.textAlign = "center";
  const step = dur > 20 ? 5 : dur > 8 ? 2 : dur > 3 ? 1 : 0.5;
  for (let t = 0; t <= dur + 1e-6; t += step) g.fillText(`${+t.toFixed(1)} s`, X(t), H - 5);
  // cursor
  const t = $("video").currentTime || 0, x = X(t);
  g.strokeStyle = "#111"; g.lineWidth = 2;
  g.beginPath(); g.moveTo(x, padT - 4); g.lineTo(x, padT + ph + 4); g.stroke();
  cv.dataset.cursorX = x.toFixed(1);
  cv.dataset.plotLeft = padL; cv.dataset.plotWidth = pw;
  const w = windowAt(t);
  $("now-t").textContent = `${t.toFixed(1)} s`;
  $("now-label").textContent = w ? w.label : "-";
  $("now-label").style.color = w ? COLORS[result.classes.indexOf(w.label) % 10] : "";
  $("now-label").dataset.t = t.toFixed(3);
  $("now-conf").textContent = w ? `${(100 * w.probabilities[w.label]).toFixed(0)} % in ${w.start.toFixed(1)}-${w.end.toFixed(1)} s` : "";
  $("now-mods").replaceChildren(...(w ? modBadges(w.modalities) : []));
}

function follow() {
  draw();
  if (!$("video").paused) requestAnimationFrame(follow);
}

function download(blob, name) {
  const a = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

const stem = () => (result.file || "prediction").replace(/\.[^.]*$/, "");

async function downloadPng() {
  const resp = await fetch("/api/plot", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify(result) });
  if (!resp.ok) return status("cannot draw the PNG: " + (await resp.json()).error, true);
  download(await resp.blob(), stem() + ".png");
}

async function record() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (e) { return status("camera/microphone not available: " + e.message, true); }
  const v = $("video");
  $("result").hidden = false;
  v.src = ""; v.srcObject = stream; v.muted = true; v.play();
  const type = ["video/webm;codecs=vp8,opus", "video/webm"].find((t) => MediaRecorder.isTypeSupported(t)) || "";
  const rec = new MediaRecorder(stream, type ? { mimeType: type } : {});
  const parts = [];
  rec.ondataavailable = (e) => e.data.size && parts.push(e.data);
  const done = new Promise((ok) => { rec.onstop = ok; });
  setButtons(false);
  rec.start(250);
  for (let s = RECORD_S; s > 0; s--) { status(`recording ... ${s}`); await new Promise((ok) => setTimeout(ok, 1000)); }
  rec.stop();
  await done;
  stream.getTracks().forEach((t) => t.stop());
  setButtons(true);
  await predict(new Blob(parts, { type: "video/webm" }), "recording.webm");
}

function init() {
  const drop = $("drop"), input = $("file");
  drop.onclick = () => input.click();
  drop.onkeydown = (e) => (e.key === "Enter" || e.key === " ") && input.click();
  input.onchange = () => input.files[0] && predict(input.files[0], input.files[0].name);
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => {
    e.preventDefault(); drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) predict(f, f.name);
  };
  $("record").onclick = record;
  $("rec-s").textContent = RECORD_S;
  $("dl-json").onclick = () => download(new Blob([JSON.stringify(result, null, 2)], { type: "application/json" }), stem() + ".json");
  $("dl-png").onclick = downloadPng;
  const v = $("video");
  v.addEventListener("play", follow);
  for (const ev of ["seeked", "timeupdate", "loadedmetadata"]) v.addEventListener(ev, draw);
  window.addEventListener("resize", draw);
  loadModels();
}
init();
