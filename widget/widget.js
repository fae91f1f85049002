/* edge-gateway chat widget. Embed: <script src="https://<gateway>/widget.js" data-key="pk_..." async></script>
   No dependencies; everything lives in a shadow root, so page styles and widget styles never mix. */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector("script[data-key][src*='widget.js']");
  if (!script || window.__edgeGatewayWidget) return;
  window.__edgeGatewayWidget = true;
  var KEY = script.getAttribute("data-key") || "";
  var BASE = new URL(script.src, location.href).origin;
  var store = window.localStorage;
  var CONV_KEY = "eg-conversation:" + KEY;
  var visitor = read("eg-visitor") || write("eg-visitor", rand());

  function read(k) { try { return store.getItem(k); } catch (e) { return null; } }
  function write(k, v) { try { store.setItem(k, v); } catch (e) {} return v; }
  function forget(k) { try { store.removeItem(k); } catch (e) {} }
  function rand() {
    var a = new Uint8Array(16); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function api(path) { return BASE + "/v1/widget/" + path + (path.indexOf("?") < 0 ? "?" : "&") + "key=" + encodeURIComponent(KEY); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }

  var CSS = [
    "*{box-sizing:border-box}",
    ".launch{width:56px;height:56px;border-radius:50%;border:0;background:var(--c);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);display:grid;place-items:center}",
    ".launch svg{width:28px;height:28px;fill:currentColor}",
    ".launch:focus-visible,button:focus-visible,textarea:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}",
    ".panel{position:absolute;bottom:70px;width:360px;max-width:calc(100vw - 40px);height:520px;max-height:calc(100vh - 110px);background:#fff;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden}",
    ":host(.right) .panel{right:0}:host(.left) .panel{left:0}",
    ".panel[hidden]{display:none}",
    "header{background:var(--c);color:#fff;padding:12px 14px;display:flex;align-items:center;justify-content:space-between;font-weight:600}",
    "header button{background:none;border:0;color:#fff;font-size:20px;cursor:pointer;line-height:1}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f6f8fa}",
    ".msg{max-width:85%;padding:8px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}",
    ".bot{background:#fff;border:1px solid #d0d7de;align-self:flex-start}",
    ".me{background:var(--c);color:#fff;align-self:flex-end}",
    ".err{background:#fff1f0;border:1px solid #ffa39e;color:#a8071a;align-self:stretch;max-width:100%}",
    ".typing{align-self:flex-start;padding:8px 12px;color:#57606a}",
    ".typing span{display:inline-block;width:6px;height:6px;margin:0 2px;border-radius:50%;background:#8c959f;animation:b 1s infinite}",
    ".typing span:nth-child(2){animation-delay:.15s}.typing span:nth-child(3){animation-delay:.3s}",
    "@keyframes b{0%,80%,100%{opacity:.3}40%{opacity:1}}",
    ".quick{display:flex;flex-wrap:wrap;gap:6px}",
    ".quick button{border:1px solid var(--c);color:var(--c);background:#fff;border-radius:16px;padding:5px 10px;cursor:pointer;font:inherit}",
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #d0d7de;background:#fff}",
    "textarea{flex:1;resize:none;border:1px solid #d0d7de;border-radius:8px;padding:8px;font:inherit;height:40px}",
    "form button{background:var(--c);color:#fff;border:0;border-radius:8px;padding:0 14px;cursor:pointer;font:inherit}",
    "form button:disabled{opacity:.5;cursor:default}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}",
    "@media (max-width:480px){.panel{position:fixed;inset:0;width:auto;height:auto;max-width:none;max-height:none;border-radius:0}}",
  ].join("\n");

  function mount(cfg) {
    // A custom element with inline !important styles: no page selector (div, *, #id) can move it.
    var host = el("edge-gateway-widget");
    var left = cfg.position === "bottom-left";
    host.className = left ? "left" : "right";
    host.style.cssText = "all:initial !important;display:block !important;position:fixed !important;z-index:2147483000 !important;bottom:20px !important;font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif !important;color:#1f2328 !important;" + (left ? "left" : "right") + ":20px !important";
    var root = host.attachShadow({ mode: "open" });
    var style = el("style", null, CSS);
    root.appendChild(style);
    host.style.setProperty("--c", /^#[0-9a-fA-F]{3,8}$/.test(cfg.color) ? cfg.color : "#1a73e8");

    var launch = el("button", { class: "launch", type: "button", "aria-label": "Open chat: " + cfg.title, "aria-expanded": "false", "aria-controls": "eg-panel" });
    launch.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z"/></svg>';
    var panel = el("div", { class: "panel", id: "eg-panel", role: "dialog", "aria-label": cfg.title, hidden: "" });
    var head = el("header");
    head.appendChild(el("span", null, cfg.title));
    var close = el("button", { type: "button", "aria-label": "Close chat" }, "×");
    head.appendChild(close);
    var log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
    var form = el("form");
    var label = el("label", { class: "sr", for: "eg-input" }, "Your message");
    var input = el("textarea", { id: "eg-input", rows: "1", placeholder: "Type a message…", maxlength: "4000" });
    var send = el("button", { type: "submit" }, "Send");
    form.appendChild(label); form.appendChild(input); form.appendChild(send);
    panel.appendChild(head); panel.appendChild(log); panel.appendChild(form);
    root.appendChild(panel); root.appendChild(launch);
    document.body.appendChild(host);

    function open(show) {
      panel.hidden = !show;
      launch.setAttribute("aria-expanded", String(show));
      if (show) input.focus(); else launch.focus();
    }
    launch.addEventListener("click", function () { open(panel.hidden); });
    close.addEventListener("click", function () { open(false); });
    panel.addEventListener("keydown", function (e) { if (e.key === "Escape") open(false); });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : submit(); }
    });
    form.addEventListener("submit", function (e) { e.preventDefault(); submit(); });

    function bubble(cls, text) {
      var b = el("div", { class: "msg " + cls }, text);
      log.appendChild(b); log.scrollTop = log.scrollHeight;
      return b;
    }
    // A final `[[a | b]]` line in an answer is shown as quick-reply buttons.
    function render(b, text, final) {
      var m = /\n?\[\[([^\]]*)\]\]\s*$/.exec(text);
      b.textContent = m ? text.slice(0, m.index) : text.replace(/\n?\[\[[^\]]*$/, "");
      if (final && m) {
        var q = el("div", { class: "quick", role: "group", "aria-label": "Quick replies" });
        m[1].split("|").forEach(function (s) {
          s = s.trim(); if (!s) return;
          var btn = el("button", { type: "button" }, s);
          btn.addEventListener("click", function () { q.remove(); input.value = s; submit(); });
          q.appendChild(btn);
        });
        log.appendChild(q);
      }
      log.scrollTop = log.scrollHeight;
    }
    function error(status) {
      var text = status === 429 ? "You're sending messages too quickly. Please wait a moment and try again."
        : status === 403 ? "This chat isn't available on this site."
        : "Sorry, something went wrong. Please try again.";
      bubble("err", text).setAttribute("role", "alert");
    }

    var busy = false;
    function submit() {
      var text = input.value.trim();
      if (!text || busy) return;
      busy = true; send.disabled = true; input.value = "";
      bubble("me", text);
      var typing = el("div", { class: "typing", "aria-label": "Assistant is typing" });
      typing.innerHTML = "<span></span><span></span><span></span>";
      log.appendChild(typing); log.scrollTop = log.scrollHeight;
      var answer = null, acc = "", failed = false;
      // A conversation the gateway no longer issues (its tenant re-created, or the master key
      // that signed it retired) is forgotten, and the message starts a new one.
      function post(conv) {
        var body = { message: text };
        if (conv) body.conversation_id = conv;
        return fetch(api("chat"), { method: "POST", headers: { "content-type": "application/json", "x-visitor-id": visitor }, body: JSON.stringify(body) })
          .then(function (res) {
            if (res.status !== 400 || !conv) return res;
            forget(CONV_KEY);
            return post(null);
          });
      }
      post(read(CONV_KEY))
        .then(function (res) {
          if (!res.ok || !res.body) { failed = true; typing.remove(); error(res.status); return; }
          var id = res.headers.get("x-conversation-id");
          if (id) write(CONV_KEY, id);
          var reader = res.body.getReader(), dec = new TextDecoder(), buf = "";
          function pump() {
            return reader.read().then(function (r) {
              if (r.done) return;
              buf += dec.decode(r.value, { stream: true }).replace(/\r\n?/g, "\n");
              var i;
              while ((i = buf.indexOf("\n\n")) >= 0) {
                var block = buf.slice(0, i); buf = buf.slice(i + 2);
                var data = block.split("\n").filter(function (l) { return l.indexOf("data:") === 0; })
                  .map(function (l) { return l.slice(5).replace(/^ /, ""); }).join("\n");
                if (!data || data === "[DONE]") continue;
                var j; try { j = JSON.parse(data); } catch (e) { continue; }
                if (j.error) { failed = true; typing.remove(); error(500); continue; }
                var piece = j.choices && j.choices[0] && j.choices[0].delta && j.choices[0].delta.content;
                if (piece) {
                  if (!answer) { typing.remove(); answer = bubble("bot", ""); }
                  acc += piece; render(answer, acc, false);
                }
              }
              return pump();
            });
          }
          return pump();
        })
        .catch(function () { failed = true; typing.remove(); error(0); })
        .then(function () {
          typing.remove();
          if (answer && !failed) render(answer, acc, true);
          busy = false; send.disabled = false; input.focus();
        });
    }

    // Greeting, then the conversation so far (after a reload).
    bubble("bot", cfg.greeting);
    var saved = read(CONV_KEY);
    if (saved) {
      fetch(api("conversations/" + encodeURIComponent(saved)))
        .then(function (r) {
          if (r.status === 404) forget(CONV_KEY);
          return r.ok ? r.json() : null;
        })
        .then(function (h) {
          if (!h) return;
          h.messages.forEach(function (m, i) {
            // The last answer keeps its quick replies; earlier ones were already answered.
            if (m.role === "user") bubble("me", m.content);
            else render(bubble("bot", ""), m.content, i === h.messages.length - 1);
          });
        }).catch(function () {});
    }
  }

  function start() {
    fetch(api("config")).then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(mount)
      .catch(function () { mount({ title: "Chat", greeting: "Hi! How can I help?", color: "#1a73e8", position: "bottom-right" }); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
