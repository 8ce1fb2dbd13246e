/* The editors' desk: keyboard shortcuts and small helpers. No build, no framework; htmx does
   the requests. Everything here is a convenience: the pages work without it. */
(function () {
  "use strict";

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  function toast(text) {
    var box = document.getElementById("toast");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { box.hidden = true; }, 6000);
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue-body tr.row"));
  }

  function selected() {
    return document.querySelector("#queue-body tr.row.selected");
  }

  function select(row) {
    rows().forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    if (!row) return;
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.indexOf(selected());
    var next = all[Math.min(all.length - 1, Math.max(0, index + step))] || all[0];
    select(next);
    open(next);
  }

  function open(row) {
    row = row || selected();
    if (!row) return;
    var link = row.querySelector("a.open");
    if (link) link.click();
  }

  function clickShortcut(key) {
    var target = document.querySelector('[data-shortcut="' + key + '"]');
    if (target && !target.disabled) { target.click(); return true; }
    return false;
  }

  function focusField(name) {
    var field = document.querySelector('[data-focus="' + name + '"]');
    if (!field) return false;
    var details = field.closest("details");
    if (details) details.open = true;
    field.focus();
    if (field.select) field.select();
    return true;
  }

  var pendingG = false;

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") {
      if (typing(document.activeElement)) document.activeElement.blur();
      var help = document.getElementById("help");
      if (help && help.open) help.close();
      return;
    }
    if (typing(document.activeElement)) return;
    var key = event.key;
    if (pendingG) {
      pendingG = false;
      var link = document.querySelector('[data-nav-shortcut="g ' + key + '"]');
      if (link) { event.preventDefault(); link.click(); }
      return;
    }
    switch (key) {
      case "g": pendingG = true; setTimeout(function () { pendingG = false; }, 1200); return;
      case "j": case "ArrowDown": if (rows().length) { event.preventDefault(); move(1); } return;
      case "k": case "ArrowUp": if (rows().length) { event.preventDefault(); move(-1); } return;
      case "o": if (selected()) { event.preventDefault(); open(); } return;
      case "Enter": {
        var active = document.activeElement;
        var onPage = !active || active === document.body || active.matches("tr.row");
        if (onPage && selected()) { event.preventDefault(); open(); }
        return;
      }
      case "x": {
        var row = selected();
        var box = row && row.querySelector("input[type=checkbox]");
        if (box) { event.preventDefault(); box.checked = !box.checked; }
        return;
      }
      case "/": if (focusField("search")) event.preventDefault(); return;
      case "a": if (clickShortcut("a")) event.preventDefault(); return;
      case "A": if (clickShortcut("A")) event.preventDefault(); return;
      case "r": if (focusField("reject")) event.preventDefault(); return;
      case "e": if (focusField("title")) event.preventDefault(); return;
      case "?": {
        var dialog = document.getElementById("help");
        if (dialog && dialog.showModal) { event.preventDefault(); dialog.showModal(); }
        return;
      }
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    if (target.closest("[data-help]")) {
      var dialog = document.getElementById("help");
      if (dialog && dialog.showModal) dialog.showModal();
      return;
    }
    if (target.closest("[data-close]")) {
      var d = target.closest("dialog");
      if (d) d.close();
      return;
    }
    var row = target.closest("#queue-body tr.row");
    if (row) {
      select(row);
      // A click anywhere on the row (but its checkbox or link) opens the preview.
      if (!target.closest("input, a, button, label")) open(row);
    }
    var all = target.closest("#select-all");
    if (all) {
      rows().forEach(function (r) {
        var box = r.querySelector("input[type=checkbox]");
        if (box) box.checked = all.checked;
      });
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    toast("Lỗi " + xhr.status + ": không thực hiện được. Hãy tải lại trang.");
  });
  document.addEventListener("htmx:sendError", function () {
    toast("Mất kết nối tới máy chủ. Kiểm tra mạng rồi thử lại.");
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target && event.target.id === "preview") {
      var head = event.target.querySelector("h1, h2");
      var flash = event.target.querySelector(".flash.ok, .flash.err");
      if (flash) toast(flash.textContent.trim());
      if (head && !typing(document.activeElement)) event.target.scrollTop = 0;
    }
  });
})();
