// The page at /: every picture on it is drawn through the same v2 infer API an app would call.
// Generators get a grid of samples (seeded, so a seed always shows the same digits); decoders with a
// 2-d latent get a plane to click, each click decoding that point.
"use strict";

const GRID = 8;        // samples per side of a generator's grid
const ZOOM = 2;        // screen pixels per data pixel
const PLANE = 240;     // size of the latent plane in pixels
const SPREAD = 3;      // the plane spans the prior's mean +- SPREAD standard deviations

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("zoo-serve-token") || "";
let tokenWanted = null;  // resolves when the user submits a token

function waitForToken(message) {
  $("token").style.display = "block";
  $("token-status").textContent = message;
  $("token-input").focus();
  return new Promise((resolve) => { tokenWanted = resolve; });
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token-input").value.trim();
  sessionStorage.setItem("zoo-serve-token", token);
  $("token").style.display = "none";
  if (tokenWanted) tokenWanted();
});

// fetch with the token; a 401 asks for it and tries again.
async function api(path, body) {
  for (;;) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    const response = await fetch(path, body === undefined
      ? { headers } : { method: "POST", headers, body: JSON.stringify(body) });
    if (response.status === 401) {
      await waitForToken(token ? "That token was refused; try again." : "Enter the server's token (zoo serve --token).");
      continue;
    }
    const answer = await response.json();
    if (!response.ok) throw new Error(`${path}: ${response.status} ${answer.error || ""}`);
    return answer;
  }
}

// A seeded standard-normal generator (mulberry32 + Box-Muller): the same seed, the same noise.
function normals(count, seed) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6D2B79F5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;  // in (0, 1): log() stays finite
  };
  const values = new Array(count);
  for (let i = 0; i < count; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    values[i] = radius * Math.cos(angle);
    if (i + 1 < count) values[i + 1] = radius * Math.sin(angle);
  }
  return values;
}

// [C, H, W] with 1 or 3 channels, or [H, W]; null for data that is not a picture.
function imageLayout(shape) {
  if (shape.length === 2) return { channels: 1, height: shape[0], width: shape[1] };
  if (shape.length === 3 && (shape[0] === 1 || shape[0] === 3)) return { channels: shape[0], height: shape[1], width: shape[2] };
  return null;
}

// Draw count images (flat data, row-major) into the canvas, columns per row, scaled by ZOOM.
function drawImages(canvas, data, layout, count, columns) {
  const { channels, height, width } = layout;
  const rows = Math.ceil(count / columns);
  canvas.width = columns * width;
  canvas.height = rows * height;
  canvas.style.width = `${columns * width * ZOOM}px`;
  canvas.style.height = `${rows * height * ZOOM}px`;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(canvas.width, canvas.height);
  const plane = height * width;
  for (let n = 0; n < count; n++) {
    const x0 = (n % columns) * width, y0 = Math.floor(n / columns) * height;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const at = 4 * ((y0 + y) * canvas.width + x0 + x);
        for (let c = 0; c < 3; c++) {
          const value = data[n * channels * plane + (channels === 3 ? c : 0) * plane + y * width + x];
          pixels.data[at + c] = Math.round(255 * Math.min(1, Math.max(0, value)));
        }
        pixels.data[at + 3] = 255;
      }
    }
  }
  context.putImageData(pixels, 0, 0);
}

async function infer(model, rows, values) {
  const answer = await api(`/v2/models/${encodeURIComponent(model.name)}/infer`, {
    inputs: [{ name: model.inputs[0].name, shape: [rows, ...model.inputs[0].shape.slice(1)], datatype: "FP32", data: values }],
  });
  return answer.outputs[0];
}

function panel(model, title) {
  const section = document.createElement("section");
  section.innerHTML = `<h2></h2><div class="controls"></div><div class="row"></div><div class="status"></div>`;
  section.querySelector("h2").textContent = title;
  $("models").appendChild(section);
  return { section, controls: section.querySelector(".controls"), row: section.querySelector(".row"),
           status: section.querySelector(".status") };
}

function showError(status, error) {
  status.textContent = String(error.message || error);
  status.classList.add("error");
  console.error(error);
}

function generatorPanel(model, meta) {
  const layout = imageLayout(meta.dataShape);
  const view = panel(model, `${model.name}: samples`);
  if (!layout) {
    view.status.textContent = `samples have shape [${meta.dataShape}], not pictures`;
    return;
  }
  view.controls.innerHTML = `<label>seed <input type="number" min="0" value="0"></label> <button>draw</button>`;
  const seedInput = view.controls.querySelector("input");
  const canvas = document.createElement("canvas");
  canvas.className = "grid";
  view.row.appendChild(canvas);
  const latentDim = model.inputs[0].shape[1];
  const draw = async () => {
    const seed = Math.max(0, Math.floor(Number(seedInput.value) || 0));
    const started = performance.now();
    try {
      const output = await infer(model, GRID * GRID, normals(GRID * GRID * latentDim, seed));
      drawImages(canvas, output.data, layout, GRID * GRID, GRID);
      view.status.classList.remove("error");
      view.status.textContent = `${GRID * GRID} samples, seed ${seed}, ${Math.round(performance.now() - started)} ms`;
      canvas.dataset.drawn = String(seed);
    } catch (error) {
      showError(view.status, error);
    }
  };
  view.controls.querySelector("button").addEventListener("click", draw);
  seedInput.addEventListener("keydown", (event) => { if (event.key === "Enter") draw(); });
  return draw();
}

function planePanel(model, meta) {
  const layout = imageLayout(meta.dataShape);
  if (!layout) return;
  const view = panel(model, `${model.name}: click the latent plane`);
  const mean = meta.prior.mean, std = meta.prior.std;
  const plane = document.createElement("canvas");
  plane.className = "plane";
  plane.width = plane.height = PLANE;
  const picture = document.createElement("canvas");
  picture.className = "decoded";
  view.row.append(plane, picture);
  const toLatent = (px, py) => [mean[0] + SPREAD * std[0] * (2 * px / PLANE - 1),
                                mean[1] - SPREAD * std[1] * (2 * py / PLANE - 1)];
  const drawPlane = (px, py) => {
    const context = plane.getContext("2d");
    context.fillStyle = "#f4f4f4";
    context.fillRect(0, 0, PLANE, PLANE);
    context.strokeStyle = "#ccc";
    for (let k = 1; k < 2 * SPREAD; k++) {  // one line per standard deviation
      const at = k * PLANE / (2 * SPREAD);
      context.beginPath(); context.moveTo(at, 0); context.lineTo(at, PLANE); context.stroke();
      context.beginPath(); context.moveTo(0, at); context.lineTo(PLANE, at); context.stroke();
    }
    context.fillStyle = "#d33";
    context.beginPath(); context.arc(px, py, 4, 0, 2 * Math.PI); context.fill();
  };
  const decodeAt = async (px, py) => {
    drawPlane(px, py);
    const z = toLatent(px, py);
    try {
      const output = await infer(model, 1, z);
      drawImages(picture, output.data, layout, 1, 1);
      picture.style.width = picture.style.height = `${PLANE}px`;
      view.status.classList.remove("error");
      view.status.textContent = `z = [${z.map((v) => v.toFixed(2)).join(", ")}]`;
      picture.dataset.drawn = "1";
    } catch (error) {
      showError(view.status, error);
    }
  };
  plane.addEventListener("click", (event) => {
    const box = plane.getBoundingClientRect();
    decodeAt((event.clientX - box.left) * PLANE / box.width, (event.clientY - box.top) * PLANE / box.height);
  });
  return decodeAt(PLANE / 2, PLANE / 2);  // start at the prior's mean
}

async function main() {
  if (document.body.dataset.tokenRequired && !token) await waitForToken("Enter the server's token (zoo serve --token).");
  const server = await api("/v2");
  $("server").textContent = `${server.name} ${server.version}`;
  const index = await api("/v2/repository/index", {});
  const models = await Promise.all(index.map((entry) => api(`/v2/models/${encodeURIComponent(entry.name)}`)));
  const drawing = [];
  for (const model of models) {
    const p = model.parameters || {};
    const meta = { part: p["zoo.part"], dataShape: JSON.parse(p["zoo.data_shape"] || "[]"),
                   latentShape: JSON.parse(p["zoo.latent_shape"] || "[]"), prior: JSON.parse(p["zoo.prior"] || "{}") };
    const latentSize = meta.latentShape.reduce((a, b) => a * b, 1);
    if (meta.part === "generator") drawing.push(generatorPanel(model, meta));
    if (meta.part === "decoder" && latentSize === 2 && meta.prior.mean && meta.prior.std) drawing.push(planePanel(model, meta));
  }
  if (!drawing.length) $("status").textContent = "No generator, and no decoder with a 2-d latent, to show.";
  await Promise.all(drawing);
  document.body.dataset.ready = "1";
}

main().catch((error) => showError($("status"), error));
