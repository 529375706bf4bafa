// relay's example page (templates/pages/example.html), served as GET /example.js: the page's
// CSP allows scripts from relay itself only, never inline. Its texts come from data-* attributes.
// With JavaScript: post with fetch (as Formspree's clients do) and show errors in place.
(function () {
  // The ALTCHA widget's strict-CSP build needs its workers named (served by relay from
  // node_modules when installed, see relay/web/example.py); module scripts run before this one.
  if (window.$altcha) {
    ["PBKDF2/SHA-256", "PBKDF2/SHA-384", "PBKDF2/SHA-512"].forEach(function (name) {
      window.$altcha.algorithms.set(name, function () { return new Worker("/altcha/pbkdf2.js"); });
    });
    ["SHA-256", "SHA-384", "SHA-512"].forEach(function (name) {
      window.$altcha.algorithms.set(name, function () { return new Worker("/altcha/sha.js"); });
    });
  }
  var form = document.getElementById("example-form");
  var status = document.getElementById("form-status");
  form.noValidate = true;  // let relay's own messages, in this page's language, speak
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    form.querySelectorAll("[data-error-for]").forEach(function (el) { el.textContent = ""; });
    status.textContent = form.dataset.sending;
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "Accept": "application/json", "Accept-Language": form.dataset.lang }
    }).then(function (response) { return response.json(); }).then(function (body) {
      if (body.ok) {
        form.reset();
        status.textContent = form.dataset.sent;
        return;
      }
      var general = [];
      (body.errors || []).forEach(function (error) {
        var name = error.field === "_replyto" ? "email" : error.field;
        var slot = name && form.querySelector('[data-error-for="' + name + '"]');
        if (slot) { slot.textContent = error.message; } else { general.push(error.message); }
      });
      status.textContent = general.length ? general.join(" ") : body.error;
    }).catch(function () {
      status.textContent = form.dataset.failed;
    });
  });
})();
