// The ehrqa web page: sign in with a token, pick a patient, ask questions (streamed),
// open cited records, browse the timeline and run decision support.
// Every string from the server is put in the page as text (dom.js), never as HTML.
// Two views, chosen by the token's role (GET /v1/me): the clinician view shows every tool;
// the patient view has no decision support, scores, answer modes or badges, and shows lay
// names, readable units, High/Low flags and plain dates.
import { ApiClient, ApiError, describeError } from "./api.js";
import { lineChart } from "./chart.js";
import { refKind, refPath, resourceValue, splitCitations } from "./cite.js";
import { byId, h, replace } from "./dom.js";

const TOKEN_KEY = "ehrqa.token";
const DEFAULT_LAB = "4548-4"; // HbA1c
const EVENT_LIMIT = 1000; // the most rows the API returns per request
const EVENT_TYPES = [
  ["Encounter", "Visits"],
  ["Condition", "Conditions"],
  ["MedicationRequest", "Medications"],
  ["Immunization", "Vaccines"],
  ["Procedure", "Procedures"],
];
const SOURCE_LABELS = {
  model: "Written by the model",
  extractive: "Composed from the record",
  negative: "Nothing found in the record",
  abstain: "Not answered",
};

const SEMANTIC_TAG = / \((procedure|finding|disorder|situation|regime\/therapy|observable entity|morphologic abnormality|body structure|qualifier value|physical object|substance|product|event|person|environment|record artifact|assessment scale)\)$/i;
const PATIENT_TYPES = { Encounter: "Visit", Condition: "Condition", MedicationRequest: "Medicine", Immunization: "Vaccine", Procedure: "Procedure", Observation: "Result" };

const state = {
  api: new ApiClient(),
  noAuth: false,
  role: "clinician",
  units: {},
  suggestions: [],
  conversation: null,
  abort: null,
  cdsAbort: null,
  patient: null,
  patientSeq: 0,
  asking: false,
  opener: null,
  searchTimer: 0,
  searchSeq: 0,
  options: [],
  active: -1,
};

// ---------------------------------------------------------------- sign in and out

async function boot() {
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    state.api.token = saved;
    try {
      return start(await state.api.get("/v1/me"));
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      state.api.token = null;
      return showLogin(describeError(err));
    }
  }
  try {
    const me = await state.api.get("/v1/me");
    state.noAuth = true; // the server runs with --no-auth: no sign-in needed
    return start(me);
  } catch (err) {
    const unauthorised = err instanceof ApiError && err.status === 401;
    return showLogin(unauthorised ? "" : describeError(err));
  }
}

function showLogin(message) {
  byId("main").hidden = true;
  byId("picker").hidden = true;
  byId("logout").hidden = true;
  byId("who-label").textContent = "";
  byId("login").hidden = false;
  byId("login-error").textContent = message || "";
  byId("token-input").focus();
}

async function login(event) {
  event.preventDefault();
  const input = byId("token-input");
  const token = input.value.trim();
  if (!token) return;
  state.api.token = token;
  try {
    const me = await state.api.get("/v1/me");
    sessionStorage.setItem(TOKEN_KEY, token);
    input.value = "";
    start(me);
  } catch (err) {
    state.api.token = null;
    byId("login-error").textContent = describeError(err);
    input.select();
  }
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.api.token = null;
  state.patient = null;
  resetPatientViews();
  byId("patient-search").value = "";
  byId("patient-summary").textContent = "";
  showLogin("You are logged out.");
}

function start(me) {
  byId("login").hidden = true;
  byId("main").hidden = false;
  byId("picker").hidden = false;
  byId("logout").hidden = state.noAuth;
  const scope = me.admin ? "all patients" : `${(me.patients || []).length} patient(s)`;
  setRole(me.role || (me.admin ? "clinician" : "patient"));
  const who = isPatient() ? "patient view" : "clinician view";
  byId("who-label").textContent = state.noAuth ? `No sign-in (local) · ${who}` : `${me.name || "token"} · ${scope} · ${who}`;
  resetPatientViews();
  searchPatients("", { autoPick: true });
}

function setRole(role) {
  state.role = role === "patient" ? "patient" : "clinician";
  document.body.classList.toggle("view-patient", state.role === "patient");
  document.body.classList.toggle("view-clinician", state.role === "clinician");
  if (state.role === "patient" && !byId("panel-cds").hidden) selectTab(byId("tab-ask"), false);
}

function isPatient() {
  return state.role === "patient";
}

/** "2024-05-06…" → "6 May 2024" in the patient view, "2024-05-06" for clinicians. */
function showDate(value) {
  const day = /^(\d{4})-(\d{2})-(\d{2})/.exec(value || "");
  if (!day) return value || "";
  if (!isPatient()) return day[0];
  const date = new Date(Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3])));
  return date.toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
}

/** A code's display as a patient reads it: no "(procedure)" tags or "[Mass/volume]" parts. */
function plainName(text) {
  if (!isPatient() || !text) return text || "";
  return text.replace(SEMANTIC_TAG, "").replace(/\s*\[[^\]]*\]/g, "").replace(/ in (Serum or Plasma|Blood|Serum|Plasma|Urine)\b/g, "").trim();
}

function readableUnit(unit) {
  if (!unit || unit === "1") return "";
  if (state.units[unit] !== undefined) return state.units[unit];
  return /^\{.*\}$/.test(unit) ? "" : unit;
}

/** Run `work`; on 401 go back to the sign-in form, otherwise show the error and rethrow. */
async function guarded(work) {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && !state.noAuth) {
      sessionStorage.removeItem(TOKEN_KEY);
      state.api.token = null;
      showLogin(describeError(err));
    }
    throw err;
  }
}

function setStatus(text) {
  byId("status").textContent = text;
}

// ---------------------------------------------------------------- patient picker

async function searchPatients(text, { autoPick = false } = {}) {
  const seq = ++state.searchSeq;
  let patients;
  try {
    patients = await guarded(() => state.api.get(`/v1/patients?search=${encodeURIComponent(text)}`));
  } catch (err) {
    setStatus(describeError(err));
    return;
  }
  if (seq !== state.searchSeq) return; // a newer search has started
  if (autoPick && patients.length === 1) return selectPatient(patients[0]);
  showOptions(patients, !autoPick);
}

function showOptions(patients, open) {
  state.options = patients;
  state.active = -1;
  const list = byId("patient-list");
  replace(list, patients.length ? patients.map(patientOption) : h("li", { class: "empty", role: "option", "aria-disabled": "true" }, "No patient matches"));
  setListOpen(open);
}

function patientOption(p, i) {
  const details = [p.birth_date, p.gender, `${p.resource_count} records`].filter(Boolean).join(" · ");
  return h("li", { id: `patient-opt-${i}`, role: "option", "aria-selected": "false", onmousedown: (e) => { e.preventDefault(); selectPatient(p); } },
    h("span", { class: "opt-name" }, p.name || p.id), h("span", { class: "opt-details" }, details));
}

function setListOpen(open) {
  const input = byId("patient-search");
  byId("patient-list").hidden = !open;
  input.setAttribute("aria-expanded", String(open));
  if (!open) input.removeAttribute("aria-activedescendant");
}

function moveActive(delta) {
  const count = state.options.length;
  if (!count) return;
  if (byId("patient-list").hidden) setListOpen(true);
  state.active = (state.active + delta + count) % count;
  const items = byId("patient-list").querySelectorAll("[role=option]");
  items.forEach((li, i) => li.setAttribute("aria-selected", String(i === state.active)));
  items[state.active].scrollIntoView({ block: "nearest" });
  byId("patient-search").setAttribute("aria-activedescendant", items[state.active].id);
}

function pickerKey(event) {
  const keys = { ArrowDown: () => moveActive(1), ArrowUp: () => moveActive(-1), Escape: () => setListOpen(false) };
  if (event.key === "Enter") {
    event.preventDefault();
    const choice = state.options[state.active >= 0 ? state.active : 0];
    if (choice && !byId("patient-list").hidden) selectPatient(choice);
    return;
  }
  if (keys[event.key]) {
    event.preventDefault();
    keys[event.key]();
  }
}

function pickerInput() {
  clearTimeout(state.searchTimer);
  const text = byId("patient-search").value;
  state.searchTimer = setTimeout(() => searchPatients(text), 200);
}

async function selectPatient(p) {
  clearTimeout(state.searchTimer);
  state.searchSeq += 1; // answers to searches still in flight no longer open the list
  setListOpen(false);
  state.patient = p;
  const seq = ++state.patientSeq;
  byId("patient-search").value = p.name || p.id;
  byId("patient-summary").textContent = patientLine(p);
  resetPatientViews();
  byId("no-patient").hidden = true;
  showSuggestions();
  setStatus(`Patient ${p.name || p.id} selected.`);
  try {
    const detail = await guarded(() => state.api.get(`/v1/patients/${encodeURIComponent(p.id)}`));
    if (seq === state.patientSeq) byId("patient-summary").textContent = patientLine(detail);
  } catch (err) {
    setStatus(describeError(err));
  }
  loadTimeline(p.id, seq);
}

function patientLine(p) {
  return [p.birth_date && `born ${showDate(p.birth_date)}`, p.gender, p.resource_count !== undefined && `${p.resource_count} records`]
    .filter(Boolean).join(" · ");
}

function resetPatientViews() {
  stopAsking();
  if (state.cdsAbort) state.cdsAbort.abort();
  state.conversation = newConversationId();
  byId("suggestions").hidden = true;
  replace(byId("chat-log"));
  replace(byId("selected-body"), h("p", { class: "hint" }, "Ask a question first."));
  byId("selected-count").textContent = "";
  replace(byId("cds-output"));
  replace(byId("lab-select"));
  replace(byId("lab-chart"));
  replace(byId("lab-table"));
  byId("lab-caption").textContent = "";
  replace(byId("events"));
  byId("no-patient").hidden = Boolean(state.patient);
  byId("no-patient").textContent = "Choose a patient above to start.";
  byId("no-patient").removeAttribute("role");
  closeViewer(false);
}

function newConversationId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `c${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function showSuggestions() {
  const box = byId("suggestions");
  if (!state.suggestions.length || byId("chat-log").childElementCount) {
    box.hidden = true;
    return;
  }
  replace(box.querySelector("ul"), state.suggestions.map((q) => h("li", {},
    h("button", { type: "button", class: "suggestion secondary", onclick: () => askQuestion(q) }, q))));
  box.hidden = false;
}

// ---------------------------------------------------------------- tabs

function selectTab(tab, focus = true) {
  for (const other of document.querySelectorAll("[role=tab]")) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    byId(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
}

function tabKey(event) {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  const i = tabs.indexOf(event.target);
  const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  selectTab(tabs[(next + tabs.length) % tabs.length]);
}

// ---------------------------------------------------------------- citations and the viewer

/** Text with its citations turned into buttons that open the cited source. */
function citedText(text, className = "cited") {
  const numbers = new Map();
  const number = (ref) => { if (!numbers.has(ref)) numbers.set(ref, numbers.size + 1); return numbers.get(ref); };
  return h("span", { class: className }, splitCitations(text || "").map((seg) =>
    seg.text !== undefined ? seg.text : h("span", { class: "cites" }, "[", seg.refs.map((ref, i) => [i ? ", " : "", citeButton(ref, number(ref))]), "]")));
}

function citeButton(ref, n = null) {
  if (!refPath(ref)) return h("span", { class: "cite-plain" }, isPatient() ? "document" : ref);
  const label = isPatient() ? `source ${n || ""}`.trim() : shortRef(ref);
  return h("button", { type: "button", class: "cite", "data-ref": ref, title: isPatient() ? "Open this source" : ref,
    "aria-label": isPatient() ? `Open ${label}` : `Open source ${ref}`, onclick: (e) => openRef(ref, e.currentTarget) }, label);
}

/** A reference short enough to read in running text: "Observation/2cf3426a…". */
function shortRef(ref) {
  if (refKind(ref) !== "record") return ref;
  const [type, id] = ref.split("/");
  return id.length > 12 ? `${type}/${id.slice(0, 8)}…` : ref;
}

/** "2024-05-06T06:42:29.94+00:00" → "2024-05-06 06:42" (as recorded, no time-zone change). */
function shortDate(value) {
  const match = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}))?/.exec(value || "");
  if (!match) return value || "";
  return match[2] && match[2] !== "00:00" ? `${match[1]} ${match[2]}` : match[1];
}

async function openRef(ref, opener = null) {
  state.opener = opener;
  const body = byId("viewer-body");
  byId("viewer-title").textContent = isPatient() ? "Source" : ref;
  byId("viewer-close").hidden = false;
  byId("viewer").dataset.open = "true";
  replace(body, h("p", { class: "hint" }, "Loading…"));
  byId("viewer").focus();
  try {
    const data = await guarded(() => state.api.get(refPath(ref)));
    if (isPatient() && refKind(ref) !== "doc") byId("viewer-title").textContent = plainName(data.display) || "Source";
    replace(body, refKind(ref) === "doc" ? chunkView(data) : recordView(data));
  } catch (err) {
    replace(body, h("p", { class: "error", role: "alert" }, describeError(err)));
  }
}

function recordView(rec) {
  if (isPatient()) {
    const value = resourceValue(rec.resource, readableUnit);
    const rows = [["What", plainName(rec.display)], ["Kind", PATIENT_TYPES[rec.resourceType] || rec.resourceType], ["Date", showDate(rec.date)], ["Value", value]];
    return h("div", { class: "record" }, h("dl", { class: "facts" }, rows.filter(([, v]) => v).map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])));
  }
  const value = resourceValue(rec.resource);
  const rows = [["Type", rec.resourceType], ["What", rec.display], ["Date", shortDate(rec.date)], ["Value", value], ["Status", rec.status]];
  return h("div", { class: "record" },
    h("dl", { class: "facts" }, rows.filter(([, v]) => v).map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])),
    rec.text ? [h("h3", {}, "As the model reads it"), h("p", { class: "record-text" }, rec.text)] : null,
    h("details", { class: "raw" }, h("summary", {}, "Raw FHIR JSON"), h("pre", {}, JSON.stringify(rec.resource, null, 2))));
}

function chunkView(chunk) {
  return h("div", { class: "chunk" },
    h("dl", { class: "facts" }, h("dt", {}, "Document"), h("dd", {}, chunk.title || chunk.id),
      chunk.section ? [h("dt", {}, "Section"), h("dd", {}, chunk.section)] : null),
    h("p", { class: "chunk-text" }, chunk.text));
}

function closeViewer(restoreFocus = true) {
  byId("viewer-title").textContent = "Source";
  byId("viewer-close").hidden = true;
  byId("viewer").dataset.open = "false";
  replace(byId("viewer-body"), h("p", { class: "hint" }, "Choose a citation such as [Observation/…] to see the record it points at."));
  if (restoreFocus && state.opener && document.contains(state.opener)) state.opener.focus();
  state.opener = null;
}

// ---------------------------------------------------------------- asking

function ask(event) {
  event.preventDefault();
  askQuestion(byId("question").value.trim());
}

/** Ask `question` about the chosen patient in this conversation (a follow-up may lean on it). */
async function askQuestion(question, bubble = null) {
  const input = byId("question");
  if (state.asking) return;
  if (!state.patient) {
    const hint = byId("no-patient");
    hint.hidden = false;
    hint.textContent = "Choose a patient first: search by name above, then ask your question.";
    hint.setAttribute("role", "alert");
    byId("patient-search").focus();
    return;
  }
  if (!question) {
    setStatus("Type a question first.");
    input.focus();
    return;
  }
  byId("suggestions").hidden = true;
  const body = { question, conversation_id: state.conversation };
  if (!isPatient() && byId("answer-mode").value) body.answer_mode = byId("answer-mode").value;
  const progress = h("p", { class: "progress" }, "Sending…");
  const answer = bubble || h("div", { class: "msg answer" });
  answer.setAttribute("aria-busy", "true");
  replace(answer, progress);
  if (!bubble) {
    byId("chat-log").append(h("div", { class: "msg question" }, h("span", { class: "visually-hidden" }, "You asked: "), question), answer);
  }
  input.value = "";
  const controller = new AbortController();
  state.abort = controller;
  setAsking(true);
  const patient = state.patient;
  let shown = null;
  try {
    const path = `/v1/patients/${encodeURIComponent(patient.id)}/ask`;
    const on = {
      status: (data) => { progress.textContent = progressText(data); },
      answer: (data) => { shown = data; showAnswer(answer, data, question, { pending: progress }); },
    };
    const result = await guarded(() => state.api.askStream(path, body, on, controller.signal));
    if (state.patient !== patient) return;
    showAnswer(answer, result, question);
  } catch (err) {
    if (state.patient !== patient) return;
    if (shown && err && err.name === "AbortError") showAnswer(answer, shown, question); // keep the checked answer
    else showFailure(answer, question, err);
  } finally {
    answer.removeAttribute("aria-busy");
    if (state.abort === controller) {
      state.abort = null;
      setAsking(false);
    }
  }
}

function progressText(data) {
  if (data.stage === "searching") {
    const count = typeof data.records === "number" ? `${data.records.toLocaleString("en-US")} records` : "the record";
    return `Searching ${count}…`;
  }
  if (data.stage === "writing") return "Writing…";
  return "Working…";
}

/** An error or a stop, with Retry (asks the same question again); the text goes back in the box. */
function showFailure(el, question, err) {
  const input = byId("question");
  if (!input.value) input.value = question;
  replace(el,
    h("p", { class: "error", role: "alert" }, describeError(err)),
    h("button", { type: "button", class: "retry secondary", onclick: () => { input.value = ""; askQuestion(question, el); } }, "Retry"));
}

function stopAsking() {
  if (state.abort) state.abort.abort();
}

function setAsking(busy) {
  state.asking = busy;
  byId("ask-button").disabled = busy;
  byId("ask-button").textContent = busy ? "Answering…" : "Ask";
  byId("stop-button").hidden = !busy;
  if (!busy && document.activeElement === document.body) byId("question").focus();
}

function showAnswer(el, result, question, { pending = null } = {}) {
  const source = result.source || "unknown";
  const resolved = result.resolved_question && result.resolved_question !== question
    ? h("p", { class: "resolved hint" }, `Understood as: ${result.resolved_question}`) : null;
  const badges = isPatient() ? null : h("div", { class: "badges" },
    h("span", { class: `badge source-${source}`, title: SOURCE_LABELS[source] || source }, source),
    h("span", { class: `badge ${result.verified ? "ok" : "warn"}` }, result.verified ? "✓ verified" : "not verified"));
  const actions = pending ? pending : h("div", { class: "answer-actions" },
    h("button", { type: "button", class: "secondary small", onclick: (e) => copyAnswer(result, question, e.currentTarget) }, "Copy"),
    h("button", { type: "button", class: "secondary small", onclick: () => printAnswer(el) }, "Print"));
  replace(el,
    resolved,
    h("p", { class: "answer-text" }, h("span", { class: "visually-hidden" }, "Answer: "), citedText(result.answer)),
    badges, actions, sourceList(result));
  el.scrollIntoView({ block: "nearest" });
  showSelected(result.selected || []);
}

/** The cited sources under an answer (for reading, copying and printing). */
function sourceList(result) {
  const refs = result.citations || [];
  if (!refs.length) return null;
  return h("details", { class: "answer-sources" }, h("summary", {}, `Sources (${refs.length})`),
    h("ol", {}, refs.map((ref, i) => h("li", {}, citeButton(ref, i + 1)))));
}

async function copyAnswer(result, question, button) {
  const refs = result.citations || [];
  const text = [`Q: ${question}`, `A: ${result.answer}`, refs.length ? `Sources:\n${refs.map((r, i) => `${i + 1}. ${r}`).join("\n")}` : ""]
    .filter(Boolean).join("\n");
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch (_) {
    setStatus("The browser did not allow copying: select the text instead.");
  }
}

function printAnswer(el) {
  const sources = el.querySelector(".answer-sources");
  if (sources) sources.open = true;
  document.body.classList.add("printing");
  el.classList.add("print-me");
  const done = () => { document.body.classList.remove("printing"); el.classList.remove("print-me"); };
  window.addEventListener("afterprint", done, { once: true });
  window.print();
  setTimeout(done, 1000);
}

function showSelected(selected) {
  byId("selected-count").textContent = `(${selected.length})`;
  if (!selected.length) return replace(byId("selected-body"), h("p", { class: "hint" }, "No records were selected."));
  if (isPatient()) {
    return replace(byId("selected-body"), h("ol", { class: "selected" }, selected.map((item, i) => h("li", {}, citeButton(item.ref, i + 1)))));
  }
  replace(byId("selected-body"), h("table", { class: "selected" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Record"), h("th", { scope: "col" }, "Score"), h("th", { scope: "col" }, "Why"))),
    h("tbody", {}, selected.map((item) => h("tr", {},
      h("td", {}, citeButton(item.ref)),
      h("td", { class: "num" }, typeof item.score === "number" ? item.score.toFixed(3) : ""),
      h("td", {}, Array.isArray(item.reasons) ? item.reasons.join(", ") : String(item.reasons || "")))))));
}

// ---------------------------------------------------------------- timeline

async function loadTimeline(patientId, seq) {
  const base = `/v1/patients/${encodeURIComponent(patientId)}`;
  byId("lab-status").textContent = "Loading…";
  try {
    const [labs, ...events] = await guarded(() => Promise.all([
      state.api.get(`${base}/labs`),
      ...EVENT_TYPES.map(([type]) => state.api.get(`${base}/resources?type=${type}&limit=${EVENT_LIMIT}`)),
    ]));
    if (seq !== state.patientSeq) return;
    showLabs(labs);
    showEvents(events.flat());
    byId("lab-status").textContent = "";
  } catch (err) {
    if (seq === state.patientSeq) byId("lab-status").textContent = describeError(err);
  }
}

/** Lab series from GET /labs (numeric Quantity values only, by code) in the select box. */
function showLabs(series) {
  const select = byId("lab-select");
  const groups = new Map(series.map((group) => [group.code, group]));
  replace(select, series.map((g) => h("option", { value: g.code }, `${plainName(g.name)} (${g.points.length})`)));
  if (!series.length) {
    replace(byId("lab-chart"), h("p", { class: "hint" }, "No numeric lab results in this record."));
    return;
  }
  const busiest = series.reduce((a, b) => (b.points.length > a.points.length ? b : a));
  select.value = groups.has(DEFAULT_LAB) ? DEFAULT_LAB : busiest.code;
  select.onchange = () => drawLab(groups.get(select.value));
  drawLab(groups.get(select.value));
}

const FLAG_WORDS = { high: "High", low: "Low" };

function drawLab(group) {
  const unit = isPatient() ? group.reader_unit : group.unit;
  const name = plainName(group.name);
  const say = (p) => `${showDate(p.date)}: ${p.value} ${unit}${FLAG_WORDS[p.flag] ? `, ${FLAG_WORDS[p.flag]}` : ""}`.replace(/ +,/, ",").trim();
  const open = (point, element) => openRef(point.ref, element);
  replace(byId("lab-chart"), lineChart(group.points, { label: name, unit, onPick: open, describe: say }));
  const range = group.range ? rangeText(group.range, unit) : "";
  byId("lab-caption").textContent = `${name}${unit ? ` (${unit})` : ""} over time${range ? `; normal range ${range}` : ""}. Choose a point, or a row below, to see the result.`;
  const rows = [...group.points].sort((a, b) => b.date.localeCompare(a.date));
  replace(byId("lab-table"), h("table", { class: "lab-values" },
    h("caption", { class: "visually-hidden" }, `${name} results, newest first`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Date"), h("th", { scope: "col" }, `Value${unit ? ` (${unit})` : ""}`), h("th", { scope: "col" }, "Flag"), h("th", { scope: "col" }, "Record"))),
    h("tbody", {}, rows.map((p, i) => h("tr", {},
      h("td", {}, showDate(p.date)),
      h("td", { class: "num" }, String(p.value)),
      h("td", {}, FLAG_WORDS[p.flag] ? h("span", { class: `flag flag-${p.flag}` }, FLAG_WORDS[p.flag]) : ""),
      h("td", {}, isPatient() ? h("button", { type: "button", class: "link", onclick: (e) => openRef(p.ref, e.currentTarget) }, `Open result ${i + 1}`) : citeButton(p.ref)))))));
}

function rangeText(range, unit) {
  const u = unit ? ` ${unit}` : "";
  if (range.low !== null && range.high !== null) return `${range.low}–${range.high}${u}`;
  if (range.high !== null) return `up to ${range.high}${u}`;
  if (range.low !== null) return `from ${range.low}${u}`;
  return "";
}

function showEvents(rows) {
  const filter = byId("event-filter");
  const shown = new Set(EVENT_TYPES.map(([type]) => type));
  const draw = () => drawEvents(rows.filter((r) => shown.has(r.resourceType)));
  replace(filter, h("legend", {}, "Show"), EVENT_TYPES.map(([type, label]) => {
    const count = rows.filter((r) => r.resourceType === type).length;
    const box = h("input", { type: "checkbox", id: `show-${type}`, checked: true,
      onchange: (e) => { if (e.target.checked) shown.add(type); else shown.delete(type); draw(); } });
    const shownCount = count >= EVENT_LIMIT ? `latest ${count}` : String(count);
    return h("label", { for: `show-${type}`, class: "check" }, box, ` ${label} (${shownCount})`);
  }));
  draw();
}

function drawEvents(rows) {
  const sorted = [...rows].filter((r) => r.date).sort((a, b) => b.date.localeCompare(a.date));
  const years = new Map();
  for (const row of sorted) {
    const year = row.date.slice(0, 4);
    if (!years.has(year)) years.set(year, []);
    years.get(year).push(row);
  }
  const kind = (r) => (isPatient() ? PATIENT_TYPES[r.resourceType] || r.resourceType : r.resourceType);
  replace(byId("events"), sorted.length ? [...years].map(([year, items]) => h("section", { class: "year" },
    h("h3", {}, year),
    h("ul", {}, items.map((r) => h("li", { class: `event type-${r.resourceType}` },
      h("time", { datetime: r.date.slice(0, 10) }, showDate(r.date)),
      h("span", { class: "tag" }, kind(r)),
      h("button", { type: "button", class: "link", onclick: (e) => openRef(r.ref, e.currentTarget) }, plainName(r.display) || r.ref),
      r.status && !isPatient() ? h("span", { class: "event-status" }, r.status) : null))))) : h("p", { class: "hint" }, "Nothing to show."));
}

// ---------------------------------------------------------------- decision support

async function runCds(event, task, body) {
  event.preventDefault();
  if (!state.patient) {
    replace(byId("cds-output"), h("p", { class: "error", role: "alert" }, "Choose a patient first."));
    return;
  }
  if (state.cdsAbort) return;
  const output = byId("cds-output");
  const button = event.currentTarget.querySelector("button");
  const controller = new AbortController();
  state.cdsAbort = controller;
  button.disabled = true;
  byId("cds-stop").hidden = false;
  replace(output, h("p", { class: "hint progress" }, "Working… (Stop cancels)"));
  try {
    const path = `/v1/patients/${encodeURIComponent(state.patient.id)}/cds/${task}`;
    replace(output, adviceView(await guarded(() => state.api.post(path, body, controller.signal))));
  } catch (err) {
    replace(output, h("p", { class: "error", role: "alert" }, describeError(err)));
  } finally {
    button.disabled = false;
    byId("cds-stop").hidden = true;
    if (state.cdsAbort === controller) state.cdsAbort = null;
  }
}

function adviceView(advice) {
  const source = advice.source || "unknown";
  const items = advice.items || [];
  const text = h("p", { class: "advice-text" }, citedText(advice.text));
  return h("article", { class: "advice" },
    h("p", { class: "notice", role: "note" }, advice.notice || ""),
    h("div", { class: "badges" }, h("span", { class: `badge source-${source}`, title: SOURCE_LABELS[source] || source }, source)),
    advice.abstained && advice.abstain_reason ? h("p", { class: "hint" }, advice.abstain_reason) : null,
    // The items say the same as the text, in parts: show them first, keep the text at hand.
    items.length ? [items.map(itemView), h("details", { class: "advice-full" }, h("summary", {}, "The whole answer as text"), text)] : text);
}

// A safety check that found nothing ("Allergies checked: no allergy recorded") is no warning.
const CHECKED_CLEAR = /^\w[\w ]* checked: (no|none)\b/i;

function itemView(item) {
  const list = (title, statements, cls) => (statements && statements.length
    ? h("div", { class: `stmts ${cls}` }, h("h4", {}, title),
      h("ul", {}, statements.map((st) => h("li", {}, cls === "warnings" && !CHECKED_CLEAR.test(st.text || "") ? h("span", { "aria-hidden": "true" }, "⚠ ") : null, citedText(statementText(st))))))
    : null);
  return h("section", { class: `item${item.warnings && item.warnings.length ? " has-warnings" : ""}` },
    h("h3", {}, item.title, typeof item.score === "number" ? h("span", { class: "score" }, ` score ${item.score.toFixed(2)}`) : null),
    list(heading(item, "warnings", "Warnings"), item.warnings, "warnings"),
    list(heading(item, "statements", "Details"), item.statements, "statements"),
    list(heading(item, "evidence_for", "Findings for"), item.evidence_for, "for"),
    list(heading(item, "evidence_against", "Findings against"), item.evidence_against, "against"),
    list(heading(item, "next_steps", "Next steps"), item.next_steps, "next"));
}

/** What one list of an item holds, as the server names it ("Findings for", "Safety checks"). */
function heading(item, key, fallback) {
  return (item.headings && item.headings[key]) || fallback;
}

/** A statement's text with its citations, as Statement.render() writes it. */
function statementText(st) {
  const text = (st.text || "").trimEnd();
  const cited = (st.citations || []).filter((ref) => !text.includes(`[${ref}]`)).map((ref) => `[${ref}]`).join(" ");
  return cited ? `${text} ${cited}` : text;
}

// ---------------------------------------------------------------- wiring

function wire() {
  byId("login-form").addEventListener("submit", login);
  byId("logout").addEventListener("click", logout);
  const search = byId("patient-search");
  search.addEventListener("input", pickerInput);
  search.addEventListener("keydown", pickerKey);
  search.addEventListener("blur", () => setListOpen(false));
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", tabKey);
  }
  byId("ask-form").addEventListener("submit", ask);
  byId("stop-button").addEventListener("click", stopAsking);
  byId("cds-stop").addEventListener("click", () => { if (state.cdsAbort) state.cdsAbort.abort(); });
  byId("viewer-close").addEventListener("click", () => closeViewer());
  byId("viewer").addEventListener("keydown", (e) => { if (e.key === "Escape" && !byId("viewer-close").hidden) closeViewer(); });
  byId("cds-differential").addEventListener("submit", (e) => runCds(e, "differential", { symptoms: byId("symptoms").value.trim() }));
  byId("cds-treat").addEventListener("submit", (e) => runCds(e, "treat", { condition: byId("condition").value.trim() }));
  byId("cds-summarize").addEventListener("submit", (e) => runCds(e, "summarize", {}));
}

/** The reader's unit spellings and the suggested questions (static files; optional). */
async function loadStatic() {
  const [units, suggestions] = await Promise.all(["/static/units.json", "/static/suggestions.json"].map((path) =>
    fetch(path).then((r) => (r.ok ? r.json() : null)).catch(() => null)));
  state.units = units || {};
  state.suggestions = (suggestions && suggestions.questions) || [];
}

wire();
loadStatic().then(boot);
