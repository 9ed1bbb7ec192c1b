// One audio player per page: play buttons and transcript turns seek it to a moment and play.
(function () {
  const player = () => document.getElementById("player");

  function playAt(callId, t, label) {
    const audio = player();
    if (!audio) return;
    const src = "/calls/" + encodeURIComponent(callId) + "/audio";
    const go = () => {
      audio.currentTime = t;
      audio.play().catch(() => {});  // a browser may refuse autoplay; the controls still work
    };
    if (audio.dataset.call !== callId || !audio.getAttribute("src")) {
      audio.dataset.call = callId;
      audio.src = src;
      audio.preload = "auto";
      audio.addEventListener("loadedmetadata", go, { once: true });
      audio.load();
    } else if (audio.readyState >= 1) {
      go();
    } else {
      audio.addEventListener("loadedmetadata", go, { once: true });
      audio.load();
    }
    const note = document.getElementById("now-playing");
    if (note) note.textContent = "▶ " + callId + " @ " + label;
  }

  function mmss(t) {
    const s = Math.max(0, Math.floor(t));
    return String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
  }

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("[data-play]");
    if (button) {
      document.querySelectorAll("button.play.playing").forEach((b) => b.classList.remove("playing"));
      button.classList.add("playing");
      playAt(button.dataset.call, parseFloat(button.dataset.t), mmss(parseFloat(button.dataset.t)));
      return;
    }
    const turn = ev.target.closest("li.turn");
    if (turn && !ev.target.closest("a")) {
      playAt(turn.dataset.call, parseFloat(turn.dataset.t), mmss(parseFloat(turn.dataset.t)));
    }
  });
  document.addEventListener("keydown", (ev) => {
    const turn = ev.target.closest && ev.target.closest("li.turn");
    if (turn && (ev.key === "Enter" || ev.key === " ")) {
      ev.preventDefault();
      playAt(turn.dataset.call, parseFloat(turn.dataset.t), mmss(parseFloat(turn.dataset.t)));
    }
  });

  // Highlight the turn being heard; a ?t= link from search starts the player at that turn.
  document.addEventListener("DOMContentLoaded", () => {
    const audio = player();
    if (!audio) return;
    const turns = Array.from(document.querySelectorAll("li.turn"));
    audio.addEventListener("timeupdate", () => {
      let current = null;
      for (const li of turns) if (parseFloat(li.dataset.t) <= audio.currentTime + 0.05) current = li;
      turns.forEach((li) => li.classList.toggle("current", li === current));
    });
    if (audio.dataset.start) {
      const t = parseFloat(audio.dataset.start);
      audio.preload = "metadata";
      audio.addEventListener("loadedmetadata", () => { audio.currentTime = t; }, { once: true });
      audio.load();
    }
  });
})();

// A marked word's note (what it may have been; what Whisper heard) on hover and on keyboard
// focus, in one tip on the page: a one-line quote clips what is inside it.
(function () {
  let tip = null;
  function show(el) {
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "note-tip";
      tip.setAttribute("role", "tooltip");
      document.body.appendChild(tip);
    }
    tip.textContent = el.dataset.note;
    const r = el.getBoundingClientRect();
    tip.style.left = Math.max(4, Math.min(r.left + window.scrollX, window.scrollX + document.documentElement.clientWidth - tip.offsetWidth - 4)) + "px";
    tip.style.top = (r.bottom + window.scrollY + 4) + "px";
    tip.hidden = false;
  }
  function hide() { if (tip) tip.hidden = true; }
  for (const kind of ["mouseover", "focusin"]) {
    document.addEventListener(kind, (e) => {
      const el = e.target.closest && e.target.closest("[data-note]");
      if (el) show(el);
    });
  }
  for (const kind of ["mouseout", "focusout"]) {
    document.addEventListener(kind, (e) => { if (e.target.closest && e.target.closest("[data-note]")) hide(); });
  }
})();

// The QA scorecard by keyboard: j / k move between items, 1-9 pick the item's answer in the
// order shown (then move on), s saves and opens the next call. Typing in a field is left alone.
(function () {
  const form = document.getElementById("scorecard");
  if (!form) return;
  const items = Array.from(form.querySelectorAll("fieldset.item"));
  if (!items.length) return;
  let at = 0;
  function focusItem(i) {
    at = Math.max(0, Math.min(items.length - 1, i));
    items.forEach((f, k) => f.classList.toggle("current", k === at));
    items[at].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t.closest && t.closest("textarea, select, input:not([type=radio])")) return;
    if (e.key === "j") focusItem(at + 1);
    else if (e.key === "k") focusItem(at - 1);
    else if (/^[1-9]$/.test(e.key)) {
      const choice = items[at].querySelectorAll("input[type=radio]")[Number(e.key) - 1];
      if (!choice) return;
      choice.checked = true;
      focusItem(at + 1);
    } else if (e.key === "s") {
      const next = document.getElementById("save-next");
      if (next) next.click();
    } else return;
    e.preventDefault();
  });
  items.forEach((f, k) => f.addEventListener("click", () => focusItem(k)));
  focusItem(0);
})();
