// The page's only script: send one image to /v1/predict, draw the probabilities as bars, and, where the
// server has the Keras model, fetch a Grad-CAM overlay from /v1/explain. An image the model refuses
// (status out_of_distribution) or is unsure of (uncertain) gets a plain sentence instead of bars that
// look confident: none for the first, collapsed under the sentence for the second. Unfamiliar
// dermoscopy (another device or clinic) gets the bars under a warning; every answer says whether
// melanoma is ruled out at the run's rule-out cut. User text is set with
// textContent only, never as HTML. Where the model knows age, sex and body site, the optional patient
// fields are offered with the values its training data used, and sent as query parameters.
"use strict";
const $ = (id) => document.getElementById(id);
let model = null;

function show(id, visible) { $(id).hidden = !visible; }

function fail(message) {
  $("status").textContent = "";
  $("error").textContent = message;
  show("error", true);
}

async function loadModel() {
  const response = await fetch("/v1/model");
  model = await response.json();
  $("note").textContent = model.note;
  const calibration = model.calibrated ? "calibrated on the run's validation split" : "uncalibrated";
  $("model").textContent = `Model ${model.model_id} (${model.architecture}, ${model.image_size} px, ` +
    `${model.backend}), ${calibration}.`;
  if (model.metadata_model) {
    for (const [id, values] of [["sex", model.metadata_model.sexes], ["site", model.metadata_model.sites]]) {
      for (const value of values) $(id).append(new Option(value, value));
    }
    show("patient", true);
  }
}

function patientQuery() {
  const query = new URLSearchParams();
  for (const id of ["age", "sex", "site"]) {
    if ($(id).value !== "") query.set(id, $(id).value);
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

const VERDICTS = {
  out_of_distribution: "This does not look like a dermoscopy image, so the model gives no answer. " +
    "It was trained on close-up dermoscopy photos of skin lesions only.",
  uncertain: "The model is not sure about this image \u2014 see a dermatologist.",
  unfamiliar: "This looks like dermoscopy from another device or clinic than the training images: " +
    "answered, but the accuracy measured on the training data may not hold here.",
  unchecked: "This model cannot tell whether an image is a dermoscopy image (it was saved without an " +
    "out-of-distribution check): read the bars with care.",
};

function drawVerdict(prediction) {
  let verdict = VERDICTS[prediction.status];
  if (prediction.melanoma_not_ruled_out !== null && prediction.status !== "out_of_distribution") {
    const cut = `sensitivity ${Math.round(100 * prediction.melanoma_sensitivity)}%, specificity ` +
      `${Math.round(100 * prediction.melanoma_specificity)}% on validation`;
    const mel = prediction.melanoma_not_ruled_out ? "Melanoma is not ruled out" : "Melanoma is ruled out";
    verdict = `${verdict ? verdict + " " : ""}${mel} (rule-out cut: ${cut}).`;
  }
  $("verdict").textContent = verdict || "";
  $("verdict").dataset.status = prediction.status;
  show("verdict", Boolean(verdict));
  // Refused: no bars. Unsure: bars behind a click, under the sentence. Otherwise: bars, open.
  show("answer", prediction.status !== "out_of_distribution");
  $("answer").open = prediction.status !== "uncertain";
  $("answer-summary").textContent = prediction.status === "uncertain" ?
    "What the model leaned towards (not a finding)" : "Probabilities";
}

function drawBars(prediction) {
  const names = new Map(model.classes.map((c) => [c.code, c]));
  const bars = $("bars");
  bars.replaceChildren();
  for (const entry of prediction.top_k) {
    const info = names.get(entry.class);
    const percent = (100 * entry.probability).toFixed(1);
    const row = document.createElement("li");
    row.className = "bar" + (info.malignant ? " malignant" : "");
    row.dataset.class = entry.class;
    const label = document.createElement("span");
    label.className = "label";
    label.title = info.name;
    label.innerHTML = "<b></b> <span class=\"name\"></span>";
    label.querySelector("b").textContent = entry.class;
    label.querySelector(".name").textContent = info.name;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.display = "block";
    fill.style.width = `${percent}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${percent}%`;
    row.append(label, track, value);
    bars.append(row);
  }
  const top = names.get(prediction.top_class);
  $("top").textContent = `Most probable: ${top.name} (${prediction.top_class})`;
  $("how").textContent = (prediction.calibrated ? "Calibrated probabilities" : "Uncalibrated probabilities") +
    (prediction.tta ? ", averaged over 8 flips/rotations" : "") +
    (prediction.with_metadata ? ", combined with the patient's age, sex and site. " : ". ") + prediction.note;
}

async function drawOverlay(form, prediction) {
  show("cam-figure", false);
  show("cam-missing", false);
  if (!model.gradcam) {
    $("cam-missing").textContent = "Grad-CAM overlay: not available here. This server runs an ONNX export, " +
      "which holds only the forward pass; serve the run folder to see where the model looked.";
    show("cam-missing", true);
    return;
  }
  const response = await fetch(`/v1/explain?class=${encodeURIComponent(prediction.top_class)}`,
    { method: "POST", body: form });
  if (!response.ok) {
    $("cam-missing").textContent = "Grad-CAM overlay failed: " + (await response.json()).detail;
    show("cam-missing", true);
    return;
  }
  $("cam").src = URL.createObjectURL(await response.blob());
  $("cam-caption").textContent = `Grad-CAM for ${prediction.top_class}, on the ${model.image_size} px input`;
  show("cam-figure", true);
}

let lastFile = null;  // re-sent when the patient fields change, so the bars follow them
let sent = 0;  // requests made; an answer to any but the latest is dropped

async function send(file) {
  if (!file) return;
  lastFile = file;
  const ticket = ++sent;
  show("error", false);
  $("status").textContent = `Predicting ${file.name}…`;
  const form = new FormData();
  form.append("files", file, file.name);
  try {
    if (!model) await loadModel();
    const response = await fetch(`/v1/predict${patientQuery()}`, { method: "POST", body: form });
    const body = await response.json();
    if (ticket !== sent) return;
    if (!response.ok) return fail(`${response.status}: ${body.detail}`);
    $("preview").src = URL.createObjectURL(file);
    const prediction = body.predictions[0];
    drawVerdict(prediction);
    drawBars(prediction);
    show("result", true);
    $("status").textContent = "";
    if (prediction.status === "out_of_distribution") {
      show("cam-figure", false);
      show("cam-missing", false);
      return;
    }
    await drawOverlay(form, prediction);
  } catch (error) {
    fail(`Could not reach the server (${error.message}).`);
  }
}

$("file").addEventListener("change", (event) => send(event.target.files[0]));
for (const id of ["age", "sex", "site"]) $(id).addEventListener("change", () => send(lastFile));
const drop = $("drop");
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (event) => { event.preventDefault(); drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (event) => { event.preventDefault(); send(event.dataTransfer.files[0]); });
loadModel().catch((error) => fail(`Could not load the model description (${error.message}).`));
