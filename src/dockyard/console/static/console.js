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

  // JSON editors: check the syntax as you type and before the form is sent.
  function checkJson(area) {
    var box = area.parentElement.querySelector("[data-json-error]");
    try {
      JSON.parse(area.value);
      if (box) { box.hidden = true; box.textContent = ""; }
      area.setAttribute("aria-invalid", "false");
      area.parentElement.classList.remove("has-error");
      return true;
    } catch (err) {
      if (box) { box.hidden = false; box.textContent = "Invalid JSON: " + err.message; }
      area.setAttribute("aria-invalid", "true");
      area.parentElement.classList.add("has-error");
      return false;
    }
  }
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
  // Close the user menu when clicking elsewhere.
  document.addEventListener("click", function (e) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!(e.target instanceof Node) || !menu.contains(e.target)) menu.removeAttribute("open");
    });
  });
})();
