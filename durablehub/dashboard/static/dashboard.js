// durablehub dashboard: the little the server-rendered pages need from the browser.
// Written for this project (no library): partial refresh of the parts marked data-refresh,
// the counts loaded after the list, local/UTC times, light/dark mode, keyboard shortcuts.
// Every page works without it; it only makes them livelier.
"use strict";

(function () {
  const FRAGMENT_HEADER = "X-Dashboard-Fragment";
  const store = {
    get: (name, fallback) => { try { return localStorage.getItem(name) || fallback; } catch (e) { return fallback; } },
    set: (name, value) => { try { localStorage.setItem(name, value); } catch (e) { /* private mode */ } },
  };

  // ---- times: the server writes UTC (ISO 8601 with Z); show local time unless UTC is chosen
  function pad(n, width) { return String(n).padStart(width || 2, "0"); }
  function formatTime(date, utc) {
    const y = utc ? date.getUTCFullYear() : date.getFullYear();
    const mo = utc ? date.getUTCMonth() : date.getMonth();
    const d = utc ? date.getUTCDate() : date.getDate();
    const h = utc ? date.getUTCHours() : date.getHours();
    const mi = utc ? date.getUTCMinutes() : date.getMinutes();
    const s = utc ? date.getUTCSeconds() : date.getSeconds();
    const ms = utc ? date.getUTCMilliseconds() : date.getMilliseconds();
    return `${y}-${pad(mo + 1)}-${pad(d)} ${pad(h)}:${pad(mi)}:${pad(s)}.${pad(ms, 3)}${utc ? " UTC" : ""}`;
  }
  function showTimes(root) {
    const utc = store.get("durablehub-time", "local") === "utc";
    for (const el of (root || document).querySelectorAll("time[datetime]")) {
      const date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date)) {
        el.textContent = formatTime(date, utc);
        el.title = el.getAttribute("datetime");
      }
    }
    const button = document.getElementById("time-toggle");
    if (button) button.textContent = utc ? "UTC" : "local time";
  }
  function toggleTime() {
    store.set("durablehub-time", store.get("durablehub-time", "local") === "utc" ? "local" : "utc");
    showTimes();
  }

  // ---- theme: follows the system unless chosen
  function applyTheme() {
    const theme = store.get("durablehub-theme", "auto");
    if (theme === "auto") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    const button = document.getElementById("theme-toggle");
    if (button) button.textContent = theme === "auto" ? "theme: system" : `theme: ${theme}`;
  }
  function toggleTheme() {
    const next = { auto: "dark", dark: "light", light: "auto" }[store.get("durablehub-theme", "auto")] || "auto";
    store.set("durablehub-theme", next);
    applyTheme();
  }
  applyTheme();

  // ---- partial refresh: fetch the part again (the server renders it alone) and swap it in
  async function refresh(el) {
    const response = await fetch(el.dataset.src, {
      headers: { [FRAGMENT_HEADER]: el.id },
      credentials: "same-origin",
    });
    if (response.status === 401) { location.reload(); return null; }
    if (!response.ok) return null;
    const holder = document.createElement("template");
    holder.innerHTML = (await response.text()).trim();
    const fresh = holder.content.firstElementChild;
    if (!fresh || fresh.id !== el.id) return null;
    el.replaceWith(fresh);
    showTimes(fresh);
    return fresh;
  }
  function keepFresh(id) {
    const el = document.getElementById(id);
    const seconds = el ? Number(el.dataset.refresh || 0) : 0;
    if (!seconds) return;
    setTimeout(async () => {
      if (document.hidden) { keepFresh(id); return; }
      const current = document.getElementById(id);
      const details = current && current.querySelector("details[open]");
      if (details) { keepFresh(id); return; }  // do not close a form being filled in
      const fresh = current && await refresh(current).catch(() => null);
      if (fresh && id === "summary" && Number(fresh.dataset.refresh || 0) === 0) {
        location.reload();  // the instance finished: output, actions and history change too
        return;
      }
      keepFresh(id);
    }, seconds * 1000);
  }

  // ---- keyboard: "/" search, "n" next page, "t" time zone, "d" theme
  function onKey(event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    const actions = {
      "/": () => { const f = document.getElementById("prefix"); if (f) f.focus(); },
      n: () => { const a = document.getElementById("next-page"); if (a) a.click(); },
      t: toggleTime,
      d: toggleTheme,
    };
    if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
  }

  function customRange() {
    const range = document.getElementById("range");
    if (!range) return;
    const update = () => {
      for (const el of document.querySelectorAll(".filters .custom")) el.hidden = range.value !== "custom";
    };
    range.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", () => {
    showTimes();
    applyTheme();
    document.getElementById("time-toggle")?.addEventListener("click", toggleTime);
    document.getElementById("theme-toggle")?.addEventListener("click", toggleTheme);
    document.addEventListener("keydown", onKey);
    customRange();
    const counts = document.getElementById("counts");
    if (counts && counts.dataset.src) refresh(counts).catch(() => null);
    for (const id of ["instances", "summary", "timeline", "health"]) keepFresh(id);
  });
})();
