// The compose form's rich text editor (Quill, vendored through npm by `make install`).
// Without JavaScript the form keeps its plain textarea of HTML; with it, the editor edits
// the same field, and pictures put into the body are uploaded as the agency's images.
(function () {
  "use strict";
  function start() {
    var form = document.getElementById("compose-form");
    var holder = document.getElementById("editor");
    var field = document.getElementById("body_html");
    if (!form || !holder || !field || typeof window.Quill === "undefined") return;
    var imagesUrl = form.getAttribute("data-images-url");
    var tools = [
      [{ header: [2, 3, false] }],
      ["bold", "italic", "underline"],
      [{ list: "ordered" }, { list: "bullet" }],
      ["blockquote", "link"].concat(imagesUrl ? ["image"] : []),
      ["clean"]
    ];
    holder.hidden = false;
    field.hidden = true;
    var quill = new window.Quill(holder, { theme: "snow", modules: { toolbar: tools, table: true } });
    quill.clipboard.dangerouslyPasteHTML(field.value || "");
    // The field keeps the markup as saved (an imported document's tables and figures) until
    // the writer changes the text in the editor.
    var changed = false;
    quill.on("text-change", function (delta, old, source) { if (source === "user") changed = true; });
    if (imagesUrl) {
      quill.getModule("toolbar").addHandler("image", function () {
        var input = document.createElement("input");
        input.type = "file";
        input.accept = "image/png,image/jpeg,image/gif,image/webp";
        input.addEventListener("change", function () {
          if (!input.files || !input.files[0]) return;
          var data = new FormData();
          data.append("image", input.files[0]);
          var token = form.querySelector("input[name=csrf_token]").value;
          fetch(imagesUrl, { method: "POST", body: data, headers: { "X-CSRF-Token": token }, credentials: "same-origin" })
            .then(function (resp) { return resp.json().then(function (body) { return [resp.ok, body]; }); })
            .then(function (answer) {
              if (!answer[0]) { window.alert(answer[1].detail || "Không tải được ảnh."); return; }
              var at = (quill.getSelection(true) || { index: quill.getLength() }).index;
              quill.insertEmbed(at, "image", answer[1].url, "user");
            })
            .catch(function () { window.alert("Không tải được ảnh."); });
        });
        input.click();
      });
    }
    // Pasted from Word: text typed in a legacy font (.VnTime, VNI-Times) is repaired by the
    // server's repair code before it enters the editor (captured before Quill's own paste).
    var legacyUrl = form.getAttribute("data-legacy-url");
    var LEGACY = /(font-family|face)[^>]{0,40}?(\.vn|vni)/i;
    holder.addEventListener("paste", function (e) {
      var html = e.clipboardData && e.clipboardData.getData("text/html");
      if (!legacyUrl || !html || !LEGACY.test(html)) return;
      e.preventDefault();
      e.stopPropagation();
      var doc = new DOMParser().parseFromString(html, "text/html");
      var runs = [];
      var walker = doc.createTreeWalker(doc.body, NodeFilter.SHOW_TEXT);
      for (var node = walker.nextNode(); node; node = walker.nextNode()) {
        var font = "";
        for (var el = node.parentElement; el && !font; el = el.parentElement) {
          // Read from the attribute: ".VnTime" unquoted is no valid CSS, so el.style drops it.
          var style = /font-family\s*:\s*([^;]+)/i.exec(el.getAttribute("style") || "");
          font = (style && style[1].trim()) || el.getAttribute("face") || "";
        }
        runs.push({ node: node, font: font });
      }
      var at = (quill.getSelection(true) || { index: quill.getLength() }).index;
      var token = form.querySelector("input[name=csrf_token]").value;
      fetch(legacyUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
        body: JSON.stringify({ runs: runs.map(function (r) { return { font: r.font, text: r.node.nodeValue }; }) })
      })
        .then(function (resp) { return resp.ok ? resp.json() : { texts: null }; })
        .then(function (answer) {
          if (answer.texts) answer.texts.forEach(function (text, i) { runs[i].node.nodeValue = text; });
          quill.clipboard.dangerouslyPasteHTML(at, doc.body.innerHTML, "user");
        })
        .catch(function () { quill.clipboard.dangerouslyPasteHTML(at, html, "user"); });
    }, true);
    form.addEventListener("submit", function () {
      // Quill 2.0 writes every space of its semantic HTML as &nbsp;: ordinary spaces again.
      if (changed) field.value = quill.getLength() > 1 ? quill.getSemanticHTML().replace(/&nbsp;/g, " ") : "";
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
