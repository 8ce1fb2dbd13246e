/* The portal's only script: progressive enhancement. Every page works without it.
 *
 * 1. Forms on public (cached) pages get their CSRF token from GET /gui/phien when the reader
 *    starts using them (the page itself carries none, so it stays cacheable).
 * 2. Fields that must be Vietnamese with diacritics say so as the reader types, with the same
 *    rule as the server (portal_text.written_with_diacritics).
 * 3. A live dialogue shows each answer as it arrives (server-sent events).
 */
(function () {
  "use strict";

  // --- 2. the diacritics rule (keep in step with libs/text portal_text/vietnamese.py) -------
  var MIN_MARKED_SHARE = 0.25;
  var SHORT_TEXT_WORDS = 4;
  var TONES_AND_MARKS = /[\u0300\u0301\u0303\u0309\u0323\u0302\u0306\u031b]/;
  var LETTER_WORD = /[^\s\d_\p{P}\p{S}\p{Z}\p{C}]+/gu;

  function hasDiacritics(word) {
    if (/[đĐ]/.test(word)) return true;
    return TONES_AND_MARKS.test(word.normalize("NFD"));
  }

  function writtenWithDiacritics(text) {
    var words = text.normalize("NFC").match(LETTER_WORD) || [];
    if (!words.length) return false;
    var marked = words.filter(hasDiacritics).length;
    if (words.length < SHORT_TEXT_WORDS) return marked > 0;
    return marked / words.length >= MIN_MARKED_SHARE;
  }
  window.portalDiacritics = { writtenWithDiacritics: writtenWithDiacritics };

  var MESSAGE =
    "Bạn đang gõ không dấu. Vui lòng gõ tiếng Việt có dấu: Cổng chỉ đăng ý kiến viết có dấu, " +
    "vì chữ không dấu dễ bị hiểu sai nghĩa (ví dụ «Dang» có thể là «Đảng», «đang» hay «dáng»). " +
    "Nếu máy chưa gõ được dấu, hãy bật bộ gõ tiếng Việt (Telex hoặc VNI).";

  function checkForm(form) {
    var fields = Array.prototype.slice.call(form.querySelectorAll("[data-co-dau]"));
    var text = fields.map(function (f) { return f.value; }).join("\n");
    var letters = text.replace(/[\s\d\p{P}\p{S}]/gu, "");
    var wrong = letters.length >= 12 && !writtenWithDiacritics(text);
    // The message shows beside the longest field: where the reader typed most.
    var main = fields.reduce(function (a, b) { return b.value.length > a.value.length ? b : a; }, fields[0]);
    fields.forEach(function (f) {
      var hint = document.getElementById(f.id + "-dau");
      if (!hint) return;
      var show = wrong && f === main;
      if (show && hint.textContent !== MESSAGE) hint.textContent = MESSAGE;
      if (!show && hint.textContent) hint.textContent = "";
    });
  }

  function watchDiacritics(form) {
    var timer = null;
    form.addEventListener("input", function (e) {
      if (!e.target.hasAttribute || !e.target.hasAttribute("data-co-dau")) return;
      clearTimeout(timer);
      timer = setTimeout(function () { checkForm(form); }, 400);
    });
  }

  // --- 1. tokens for forms on public pages ---------------------------------------------------
  var session = null;

  function formSession() {
    if (!session) {
      session = fetch("/gui/phien", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error("phien " + r.status); return r.json(); })
        .catch(function (err) { session = null; throw err; });
    }
    return session;
  }

  function fill(form, data) {
    var token = form.querySelector("input[name=csrf_token]");
    var idem = form.querySelector("input[name=idem]");
    if (token && !token.value) token.value = data.token;
    if (idem && !idem.value) idem.value = data.idem;
  }

  function enhancePublicForm(form) {
    var prepare = function () {
      return formSession().then(function (data) { fill(form, data); });
    };
    form.addEventListener("focusin", function () { prepare().catch(function () {}); }, { once: true });
    form.addEventListener("submit", function (e) {
      var token = form.querySelector("input[name=csrf_token]");
      if (token && token.value) return;
      e.preventDefault();
      // Without a token the server shows the form's own page: still nothing is lost.
      prepare().then(function () { form.submit(); }, function () { form.submit(); });
    });
  }

  // --- 3. a live dialogue --------------------------------------------------------------------
  function followLive(list) {
    if (!window.EventSource) return;
    var source = new EventSource(list.getAttribute("data-live"));
    var phase = document.getElementById("phase");
    var empty = document.getElementById("no-entries");
    source.addEventListener("entry", function (e) {
      var holder = document.createElement("template");
      holder.innerHTML = e.data.trim();
      var item = holder.content.firstElementChild;
      if (!item) return;
      var existing = document.getElementById(item.id);
      if (existing) existing.replaceWith(item);
      else list.appendChild(item);
      if (empty) empty.hidden = true;
    });
    source.addEventListener("withdrawn", function (e) {
      var gone = document.getElementById("q-" + e.data);
      if (gone) gone.remove();
    });
    source.addEventListener("status", function (e) {
      var data = JSON.parse(e.data);
      if (phase) {
        phase.textContent = data.label;
        phase.className = "badge phase-" + data.phase;
        phase.setAttribute("data-phase", data.phase);
      }
    });
    list.setAttribute("data-following", "1");
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
      if (form.querySelector("[data-co-dau]")) watchDiacritics(form);
      if (form.hasAttribute("data-gui")) enhancePublicForm(form);
    });
    var live = document.querySelector("[data-live]");
    if (live) followLive(live);
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
