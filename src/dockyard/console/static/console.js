// Dockyard console: small progressive enhancements. Every page works without them.
(function () {
  "use strict";

  function on(selector, event, handler) {
    document.addEventListener(event, function (e) {
      var target = e.target instanceof Element ? e.target.closest(selector) : null;
      if (target) handler(e, target);
    });
  }

  // Copy to clipboard.
  on("[data-copy]", "click", function (e, button) {
    var text = button.getAttribute("data-copy");
    var done = function () {
      var label = button.textContent;
      button.classList.add("copied");
      button.textContent = "Copied";
      setTimeout(function () { button.classList.remove("copied"); button.textContent = label; }, 1400);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (err) { /* nothing to do */ }
      area.remove();
    }
  });

  // Dismiss a flash message or a one-time panel.
  on("[data-dismiss]", "click", function (e, button) {
    var box = button.closest(".flash, .secret-panel");
    if (box) box.remove();
  });

  // Show / hide a create form.
  on("[data-toggle]", "click", function (e, button) {
    var box = document.getElementById(button.getAttribute("data-toggle"));
    if (!box) return;
    box.classList.toggle("open");
    var first = box.querySelector("input:not([type=hidden]), select, textarea");
    if (box.classList.contains("open") && first) first.focus();
  });

  // Filters that apply as soon as they change.
  on("select[data-autosubmit]", "change", function (e, select) {
    if (select.form) select.form.submit();
  });

  // Confirm before a destructive form is sent.
  on("form[data-confirm]", "submit", function (e, form) {
    if (form.dataset.confirmed === "yes") return;
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
      return;
    }
    e.preventDefault();
    dialog.querySelector("[data-confirm-text]").textContent = form.getAttribute("data-confirm");
    var label = form.getAttribute("data-confirm-label") || "Delete";
    dialog.querySelector("[data-confirm-title]").textContent = label + "?";
    dialog.querySelector("[data-confirm-ok]").textContent = label;
    dialog.returnValue = "";
    dialog.addEventListener("close", function once() {
      dialog.removeEventListener("close", once);
      if (dialog.returnValue === "ok") {
        form.dataset.confirmed = "yes";
        form.requestSubmit ? form.requestSubmit() : form.submit();
      }
    });
    dialog.showModal();
  });

  // JSON editors: check the syntax as you type and before the form is sent, and say at
  // which line and column the first mistake is (the browsers' own JSON.parse messages
  // differ, and most name no line). The server checks again.
  function jsonMistake(text) {
    var i = 0, n = text.length;
    function what(c) {
      if (c === undefined) return "the end of the document";
      if (c === "\n") return "a line break";
      return "'" + c + "'";
    }
    function fail(message) { throw { at: i, message: message }; }
    function ws() { while (i < n && " \t\n\r".indexOf(text[i]) >= 0) i++; }
    function string() {
      i++;
      while (i < n) {
        var c = text[i];
        if (c === '"') { i++; return; }
        if (c === "\\") {
          var e = text[i + 1];
          if (e === "u") {
            if (!/^[0-9a-fA-F]{4}$/.test(text.substr(i + 2, 4))) fail("\\u must be followed by four hex digits");
            i += 6;
          } else if (e !== undefined && '"\\/bfnrt'.indexOf(e) >= 0) {
            i += 2;
          } else {
            fail("unknown escape \\" + (e || "") + " in a string");
          }
        } else if (c < " ") {
          fail("a string must end (with \") on the line it starts");
        } else {
          i++;
        }
      }
      fail("the document ends inside a string: a closing \" is missing");
    }
    function value() {
      ws();
      var c = text[i];
      if (c === "{") return object();
      if (c === "[") return list();
      if (c === '"') return string();
      var number = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
      number.lastIndex = i;
      if ((c === "-" || (c >= "0" && c <= "9")) && number.exec(text)) { i = number.lastIndex; return; }
      var words = ["true", "false", "null"];
      for (var k = 0; k < words.length; k++) {
        if (text.substr(i, words[k].length) === words[k]) { i += words[k].length; return; }
      }
      fail("expected a value (a string, number, object, list, true, false or null), found " + what(c));
    }
    function object() {
      i++; ws();
      if (text[i] === "}") { i++; return; }
      for (;;) {
        ws();
        if (text[i] === "}") fail("a comma before '}': remove it");
        if (text[i] !== '"') fail("expected a property name in double quotes, found " + what(text[i]));
        string(); ws();
        if (text[i] !== ":") fail("expected ':' after the property name, found " + what(text[i]));
        i++; value(); ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") { i++; return; }
        fail("expected ',' or '}' after the property's value, found " + what(text[i]));
      }
    }
    function list() {
      i++; ws();
      if (text[i] === "]") { i++; return; }
      for (;;) {
        ws();
        if (text[i] === "]") fail("a comma before ']': remove it");
        value(); ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") { i++; return; }
        fail("expected ',' or ']' after a list item, found " + what(text[i]));
      }
    }
    try {
      value(); ws();
      if (i < n) fail("unexpected " + what(text[i]) + " after the end of the document");
      return null;
    } catch (err) {
      if (err.at === undefined) throw err;
      var before = text.slice(0, err.at).split("\n");
      return { at: err.at, line: before.length, column: before[before.length - 1].length + 1, message: err.message };
    }
  }
  // Line numbers beside a JSON editor, the line of its first mistake marked.
  function fieldOf(element) { return element.closest(".field") || element.parentElement; }
  function gutterOf(area) {
    var gutter = fieldOf(area).querySelector("[data-json-gutter]");
    if (!gutter) return null;
    var lines = area.value.split("\n").length;
    if (gutter.childElementCount !== lines) {
      gutter.textContent = "";
      for (var k = 1; k <= lines; k++) {
        var span = document.createElement("span");
        span.textContent = String(k);
        gutter.appendChild(span);
      }
    }
    gutter.scrollTop = area.scrollTop;
    return gutter;
  }
  function checkJson(area) {
    var box = fieldOf(area).querySelector("[data-json-error]");
    var mistake = jsonMistake(area.value);
    var gutter = gutterOf(area);
    if (gutter) {
      var marked = gutter.querySelector(".error-line");
      if (marked) marked.classList.remove("error-line");
      if (mistake) gutter.children[mistake.line - 1].classList.add("error-line");
    }
    area.setAttribute("aria-invalid", mistake ? "true" : "false");
    fieldOf(area).classList.toggle("has-error", !!mistake);
    if (box) {
      box.hidden = !mistake;
      box.textContent = mistake ? "Invalid JSON at line " + mistake.line + ", column " + mistake.column + ": " + mistake.message + "." : "";
      if (mistake) { box.dataset.line = mistake.line; box.dataset.at = mistake.at; } else { delete box.dataset.line; }
    }
    return !mistake;
  }
  document.querySelectorAll("textarea[data-json-editor]").forEach(function (area) {
    gutterOf(area);
    area.addEventListener("scroll", function () { gutterOf(area); });
  });
  // The message takes the caret to the mistake.
  on("[data-json-error]", "click", function (e, box) {
    var area = fieldOf(box).querySelector("textarea[data-json-editor]");
    if (!area || box.dataset.at === undefined) return;
    area.focus();
    area.setSelectionRange(Number(box.dataset.at), Number(box.dataset.at));
  });
  on("textarea[data-json-editor]", "input", function (e, area) { checkJson(area); });
  on("form[data-json-form]", "submit", function (e, form) {
    var area = form.querySelector("textarea[data-json-editor]");
    if (area && !checkJson(area)) { e.preventDefault(); area.focus(); }
  });
  on("[data-json-format]", "click", function (e, button) {
    var area = document.getElementById(button.getAttribute("data-json-format"));
    if (area && checkJson(area)) area.value = JSON.stringify(JSON.parse(area.value), null, 2);
  });
  // "Confirm password" inputs: the form is not sent while the two differ.
  function matchError(input, show) {
    var box = input.parentElement.querySelector("[data-match-error]");
    if (show && !box) {
      box = document.createElement("p");
      box.className = "field-error";
      box.setAttribute("data-match-error", "");
      box.setAttribute("data-testid", "mismatch-" + input.name);
      box.setAttribute("role", "alert");
      box.textContent = "The two passwords differ.";
      input.insertAdjacentElement("afterend", box);
    } else if (!show && box) {
      box.remove();
    }
    input.setAttribute("aria-invalid", show ? "true" : "false");
    input.parentElement.classList.toggle("has-error", show);
  }
  function differs(input) {
    var other = document.getElementById(input.getAttribute("data-match"));
    return !!other && other.value !== input.value;
  }
  on("input[data-match]", "input", function (e, input) {
    // Only once something was said: no error while the user is still typing.
    if (input.parentElement.querySelector("[data-match-error]")) matchError(input, differs(input));
  });
  on("form[data-password-form]", "submit", function (e, form) {
    form.querySelectorAll("input[data-match]").forEach(function (input) {
      var bad = differs(input);
      matchError(input, bad);
      if (bad) { e.preventDefault(); input.focus(); }
    });
  });
  // Webhook form: show the input of the chosen trigger type (all of them without script).
  function showTrigger(select) {
    var box = select.closest("[data-trigger]");
    if (!box) return;
    box.querySelectorAll("[data-trigger-panel]").forEach(function (panel) {
      panel.hidden = panel.getAttribute("data-trigger-panel") !== select.value;
    });
  }
  on("select[data-trigger-type]", "change", function (e, select) { showTrigger(select); });
  document.querySelectorAll("select[data-trigger-type]").forEach(showTrigger);

  // Live check of a tag regular expression against example tags. A preview only, with
  // JavaScript's RegExp: the server checks the pattern with RE2 and decides. RE2's named
  // groups (?P<name>…) and leading flags (?i) are translated; the match is on the whole tag.
  function previewRegex(box) {
    var out = box.querySelector("[data-regex-preview]");
    var source = box.querySelector("[data-regex-source]").value;
    var tags = box.querySelector("[data-regex-examples]").value.split(/[\s,]+/).filter(Boolean);
    out.textContent = "";
    function say(text, kind) {
      var li = document.createElement("li");
      li.className = kind;
      li.textContent = text;
      out.appendChild(li);
    }
    if (!source) { say("Enter a regular expression to see which example tags it matches.", "note"); return; }
    var pattern = source.replace(/\(\?P</g, "(?<");
    var flags = "";
    var leading = /^\(\?([ims]+)\)/.exec(pattern);
    if (leading) { flags = leading[1]; pattern = pattern.slice(leading[0].length); }
    var re;
    try {
      re = new RegExp("^(?:" + pattern + ")$", flags);
    } catch (err) {
      say("Your browser cannot read this pattern (" + err.message + "). The server checks it with RE2 when you save.", "error");
      return;
    }
    if (!tags.length) { say("Enter example tags, separated by commas.", "note"); return; }
    var hits = 0;
    tags.forEach(function (tag) {
      var hit = re.test(tag);
      if (hit) hits += 1;
      var li = document.createElement("li");
      li.className = hit ? "match" : "miss";
      li.setAttribute("data-match", hit ? "yes" : "no");
      li.title = hit ? "Matches" : "Does not match";
      li.textContent = tag;
      out.appendChild(li);
    });
    say(hits + " of " + tags.length + " match", "note");
  }
  on("[data-regex-check] input", "input", function (e, input) {
    previewRegex(input.closest("[data-regex-check]"));
  });
  document.querySelectorAll("[data-regex-check]").forEach(previewRegex);

  // Rows of inputs (a webhook's extra headers): add one, remove one. Without script, the
  // rows shown are all there is, and clearing a row removes it.
  document.querySelectorAll("[data-add-row], [data-remove-row]").forEach(function (b) { b.hidden = false; });
  on("[data-add-row]", "click", function (e, button) {
    var box = button.closest("fieldset");
    var rows = box && box.querySelector("[data-rows]");
    var template = box && box.querySelector("template[data-row-template]");
    if (!rows || !template) return;
    var next = Number(rows.getAttribute("data-next") || "0");
    rows.setAttribute("data-next", String(next + 1));
    var holder = document.createElement("div");
    holder.innerHTML = template.innerHTML.replace(/__i__/g, String(next));
    var row = holder.firstElementChild;
    row.querySelectorAll("[data-remove-row]").forEach(function (b) { b.hidden = false; });
    rows.appendChild(row);
    row.querySelector("input").focus();
  });
  on("[data-remove-row]", "click", function (e, button) {
    var row = button.closest("[data-row]");
    if (row) row.remove();
  });

  // A page shown once (a new secret): the address bar shows the page to come back to, so
  // reloading shows that page instead of sending the form again.
  document.querySelectorAll("[data-replace-url]").forEach(function (box) {
    if (window.history && history.replaceState) history.replaceState(null, "", box.getAttribute("data-replace-url"));
  });
  // An import that is queued or running: follow its progress, and show the page again
  // (counts, history) once it has ended.
  document.querySelectorAll("[data-import-poll]").forEach(function (row) {
    var url = row.getAttribute("data-import-poll");
    var set = function (field, text) {
      var cell = row.querySelector('[data-field="' + field + '"]');
      if (cell) cell.textContent = text;
    };
    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (found) {
          if (!found) return;
          var bar = row.querySelector('[data-field="progress"]');
          if (bar) { bar.max = found.progress.total || 1; bar.value = found.progress.done; }
          set("percent", (found.progress.percent || 0) + " %");
          set("state", found.state);
          set("imported", String(found.imported));
          set("skipped", String(found.skipped));
          set("invalid", String(found.invalid));
          if (found.state === "succeeded" || found.state === "failed") {
            window.location.reload();
          } else {
            setTimeout(poll, 1000);
          }
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 500);
  });
  // Close the user menu when clicking elsewhere.
  document.addEventListener("click", function (e) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!(e.target instanceof Node) || !menu.contains(e.target)) menu.removeAttribute("open");
    });
  });
  // A box that scrolls sideways (a wide table or command on a phone) takes the keyboard's
  // focus, so that it can be scrolled without a mouse; one that fits does not.
  function focusScrollers() {
    document.querySelectorAll(".table, .codeline code, pre.code-block").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1 && getComputedStyle(box).overflowX !== "visible";
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.dataset.scrollFocus = "yes";
      } else if (!scrolls && box.dataset.scrollFocus === "yes") {
        box.removeAttribute("tabindex");
        delete box.dataset.scrollFocus;
      }
    });
  }
  focusScrollers();
  window.addEventListener("resize", focusScrollers);

  // A running build's log follows live (Server-Sent Events); the page reloads when the
  // build ends, to show its outcome.
  document.querySelectorAll("pre[data-follow]").forEach(function (pre) {
    if (!window.EventSource) return;
    var url = pre.getAttribute("data-follow") + "?offset=" + pre.getAttribute("data-offset");
    var source = new EventSource(url);
    source.addEventListener("line", function (e) {
      var line = JSON.parse(e.data);
      var span = document.createElement("span");
      span.className = "log-line";
      span.setAttribute("data-line", line.line);
      span.textContent = line.text + "\n";
      var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(span);
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    });
    source.addEventListener("end", function () {
      source.close();
      window.location.reload();
    });
    source.addEventListener("failure", function () { source.close(); });
  });
})();
