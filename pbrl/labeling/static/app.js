// pbrl labeling page: two synced looping clips, an answer by button or key, nothing lost.
//
// An answer is kept in localStorage until the server acknowledges it, and re-sent with
// the same request id after a reload or a network drop, so it is stored exactly once.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const pendingKey = "pbrl-pending-" + token;
const sessionKey = "pbrl-session-" + token;
const videos = [document.getElementById("left"), document.getElementById("right")];
const keys = { ArrowLeft: "left", "1": "left", ArrowRight: "right", "2": "right", ArrowUp: "equal", "3": "equal",
               ArrowDown: "skip", "0": "skip" };
let current = null;   // the pair on screen
let busy = false;     // an answer is being sent
let nextTimer = null;

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function say(message, error = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", error);
}

function requestId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));  // works on plain http too, unlike randomUUID
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options, cache: "no-store",
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.detail || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

// A request that failed for a reason a retry can fix: no network, server down or busy.
const transient = (error) => !error.status || error.status >= 500 || error.status === 429;

function showProgress(p) {
  $("session").textContent = sessionStorage.getItem(sessionKey) || "0";
  $("round-index").textContent = p.round.index === null ? "–" : String(p.round.index + 1);  // rounds count from 1 on screen
  $("round-done").textContent = String(p.round.done);
  $("round-quota").textContent = String(p.round.quota);
  $("round-bar").max = Math.max(p.round.quota, 1);
  $("round-bar").value = p.round.done;
  $("budget-done").textContent = String(p.budget.answered);
  $("budget-total").textContent = p.budget.total === null ? String(p.budget.asked) : String(p.budget.total);
}

function enable(on) {
  document.querySelectorAll("#choices button").forEach((b) => { b.disabled = !on; });
}

// ----------------------------------------------------------------------------- answers
async function flushPending() {
  let pending = JSON.parse(localStorage.getItem(pendingKey) || "null");
  for (let wait = 1000; pending; wait = Math.min(wait * 2, 15000)) {
    try {
      const reply = await api("/api/label", { method: "POST", body: JSON.stringify(pending) });
      localStorage.removeItem(pendingKey);
      const count = Number(sessionStorage.getItem(sessionKey) || "0") + 1;
      sessionStorage.setItem(sessionKey, String(count));
      showProgress(reply.progress);
      say(reply.duplicate ? "Saved (it had arrived before the connection dropped)." : "Saved.");
      pending = null;
    } catch (error) {
      if (!transient(error)) {
        localStorage.removeItem(pendingKey);
        say("Answer not stored: " + error.message, true);
        pending = null;
      } else {
        say("Offline: your answer is kept and will be sent when the server is back…", true);
        await sleep(wait);
      }
    }
  }
}

async function answer(choice) {
  if (!current || busy) return;
  busy = true;
  enable(false);
  const note = $("note").value.trim().slice(0, 1000);
  localStorage.setItem(pendingKey, JSON.stringify({ pair: current.id, choice, request_id: requestId(), note }));
  say("Saving…");
  await flushPending();
  busy = false;
  await loadNext();
}

// ----------------------------------------------------------------------------- pairs
function playBoth() {
  videos.forEach((v) => { v.currentTime = 0; v.play().catch(() => {}); });
}

function show(pair) {
  current = pair;
  $("note").value = "";
  $("waiting").hidden = true;
  $("pair").hidden = false;
  enable(false);
  videos.forEach((v, i) => {
    v.dataset.ended = "";
    v.src = (i === 0 ? pair.left : pair.right).video + "?token=" + encodeURIComponent(token);
    v.load();
  });
}

async function loadNext() {
  clearTimeout(nextTimer);
  for (let wait = 1000; ; wait = Math.min(wait * 2, 15000)) {
    try {
      const reply = await api("/api/next");
      showProgress(reply.progress);
      if (!reply.pair) {
        current = null;
        $("pair").hidden = true;
        $("waiting").hidden = false;
        enable(false);
        nextTimer = setTimeout(loadNext, 3000);
      } else if (!current || current.id !== reply.pair.id) {
        show(reply.pair);
      }
      return;
    } catch (error) {
      if (!transient(error)) { say(error.message, true); return; }
      say("Cannot reach the server; retrying…", true);
      await sleep(wait);
    }
  }
}

videos.forEach((v) => {
  v.addEventListener("loadeddata", () => {
    if (videos.every((x) => x.readyState >= 2)) {
      playBoth();
      if (!busy) enable(true);
    }
  });
  v.addEventListener("ended", () => {  // loop both together, so they stay in sync
    v.dataset.ended = "1";
    if (videos.every((x) => x.dataset.ended)) {
      videos.forEach((x) => { x.dataset.ended = ""; });
      playBoth();
    }
  });
  v.addEventListener("error", () => {  // still rendering, or a dropped connection: try again
    if (current) setTimeout(() => { if (current && v.error) v.load(); }, 2000);
  });
});

document.querySelectorAll("#choices button[data-choice]").forEach((b) => {
  b.addEventListener("click", () => answer(b.dataset.choice));
});
$("replay").addEventListener("click", playBoth);
document.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement || event.metaKey || event.ctrlKey || event.altKey) return;
  if (event.key === "r" || event.key === "R") { playBoth(); return; }
  const choice = keys[event.key];
  if (choice && current && !$("replay").disabled) {
    event.preventDefault();
    answer(choice);
  }
});

async function start() {
  if (!token) {
    $("task").textContent = "This page needs your personal link (…/?token=…).";
    return;
  }
  for (let wait = 1000; ; wait = Math.min(wait * 2, 15000)) {
    try {
      const session = await api("/api/session");
      $("task").textContent = session.task;
      $("annotator").textContent = session.annotator;
      showProgress(session.progress);
      break;
    } catch (error) {
      if (!transient(error)) { $("task").textContent = error.message; return; }
      say("Cannot reach the server; retrying…", true);
      await sleep(wait);
    }
  }
  await flushPending();
  await loadNext();
}

start();
