// Progressive enhancement of the server-rendered storefront: writes through the JSON API (with
// the session's CSRF token and, for purchases, an Idempotency-Key made here), confirmations in
// a <dialog>, and live parts ([data-live] ids) refreshed when the entitlement stream says so.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content;
  var tenant = document.body.dataset.tenant;

  function key() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function call(method, url, body, idempotencyKey) {
    var headers = { "Content-Type": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    return fetch(url, { method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) { return r.text().then(function (t) {
        var data = {}; try { data = t ? JSON.parse(t) : {}; } catch (e) { data = { message: t }; }
        return { ok: r.ok, status: r.status, data: data };
      }); });
  }

  function flash(text, bad) {
    var f = document.getElementById("flash");
    if (!f) return;
    f.className = bad ? "bad" : "";
    f.textContent = text;
  }

  // Asks the person in the page's dialog; resolves true on Confirm.
  function confirmWith(text, note) {
    var dialog = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-note").textContent = note || "";
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function done() {
        dialog.removeEventListener("close", done);
        resolve(dialog.returnValue === "ok");
      });
      dialog.returnValue = "";
      dialog.showModal();
      document.getElementById("confirm-ok").focus();
    });
  }

  // Re-renders the page's live parts in place (no reload, no scroll jump).
  var refreshing = null;
  function refresh() {
    if (refreshing) return refreshing;
    refreshing = fetch(location.pathname + location.search, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (old) {
          // Never pull a field from under someone typing in it.
          var active = document.activeElement;
          if (old.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) return;
          var fresh = doc.getElementById(old.id);
          if (fresh) old.replaceWith(document.importNode(fresh, true));
        });
        bind();
      })
      .catch(function () {})
      .then(function () { refreshing = null; });
    return refreshing;
  }
  window.marketplaceRefresh = refresh;

  // After a write: the API's caches see it a moment later, so look again a few times.
  function settle() {
    [0, 500, 1500, 3500].forEach(function (ms) { setTimeout(refresh, ms); });
  }

  function errorText(res) {
    var d = res.data || {};
    var text = d.message || ("The request failed (" + res.status + ").");
    if (d.problems) text += " " + d.problems.map(function (p) { return p.field + ": " + p.reason; }).join("; ");
    return text;
  }

  function formValues(form) {
    var plan = form.querySelector('[name="plan"]:checked') || form.querySelector('[name="plan"]');
    var qty = form.querySelector('[name="quantity"]');
    var trial = form.querySelector('[name="trial"]');
    return { plan: plan ? plan.value : "", quantity: qty ? parseInt(qty.value, 10) || 1 : 1,
      trial: !!(trial && trial.checked) };
  }

  function connection(form) {
    var out = {};
    form.querySelectorAll("[data-field]").forEach(function (el) { if (el.value !== "") out[el.dataset.field] = el.value; });
    return out;
  }

  // The wizard's field mapping: target → source, for the targets given a source.
  function mapping(form) {
    var out = {};
    form.querySelectorAll("[data-mapping]").forEach(function (el) { if (el.value !== "") out[el.dataset.mapping] = el.value; });
    return out;
  }

  // The promotion code a form carries (blank: none).
  function codeOf(form) {
    var field = form.querySelector('[name="promotionCode"]');
    return field ? field.value.trim() : "";
  }

  // Says next to the code field why its code was refused (the field is described by it), or
  // clears that; true when there was something to say.
  function codeRefused(form, answer) {
    var field = form.querySelector('[name="promotionCode"]');
    var out = form.querySelector("#promotion-code-error");
    var refused = !!(answer && answer.field === "promotionCode");
    if (!field || !out) return refused;
    var text = refused ? String(answer.message || "This code cannot be used here.").replace(/\.?$/, ".") : "";
    out.textContent = text.charAt(0).toUpperCase() + text.slice(1);
    if (refused) { field.setAttribute("aria-invalid", "true"); field.focus(); }
    else field.removeAttribute("aria-invalid");
    return refused;
  }

  // The sentence to confirm and the quote to send back, with the form's promotion code.
  function priced(form, values) {
    var url = form.dataset.confirmUrl + "?plan=" + encodeURIComponent(values.plan) + "&quantity=" + values.quantity;
    var code = codeOf(form);
    if (code) url += "&promotionCode=" + encodeURIComponent(code);
    return fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); });
  }

  function bindBuy(form) {
    var idempotencyKey = null;
    var submit = form.querySelector("#buy-submit");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      var values = formValues(form);
      var code = codeOf(form);
      priced(form, values).then(function (price) {
        if (codeRefused(form, price)) return;
        if (!price.confirmation) { flash(price.message || "This plan cannot be priced.", true); return; }
        return confirmWith(price.confirmation, form.dataset.note).then(function (yes) {
          if (!yes) return;
          // One key per confirmed purchase: a retry of it never buys twice.
          idempotencyKey = idempotencyKey || key();
          var body = { listing: form.dataset.listing, plan: values.plan, quantity: values.quantity,
            trial: values.trial, confirmedPrice: price.quote };
          if (code) body.promotionCode = code;
          if (form.hasAttribute("data-wizard")) {
            body.connection = connection(form);
            body.fieldMapping = mapping(form);
          }
          submit.disabled = true;
          submit.setAttribute("aria-busy", "true");
          return call("POST", "/v1/tenants/" + encodeURIComponent(tenant) + "/subscriptions", body, idempotencyKey)
            .then(function (res) {
              submit.removeAttribute("aria-busy");
              if (res.ok) {
                idempotencyKey = null;
                flash("Done. It shows here as soon as it is ready.");
                settle();
              } else {
                submit.disabled = false;
                if (!codeRefused(form, res.data)) flash(errorText(res), true);
              }
            });
        });
      }).catch(function () { submit.disabled = false; flash("The marketplace did not answer; try again.", true); });
    });
    var test = form.querySelector("#test-connection");
    if (!test) return;
    var result = form.querySelector("#test-result");
    var spinner = form.querySelector("#test-spinner");
    form.querySelectorAll("[data-field]").forEach(function (el) {
      el.addEventListener("input", function () { submit.disabled = true; result.textContent = ""; result.className = ""; });
    });
    test.addEventListener("click", function () {
      if (!form.reportValidity()) return;
      test.disabled = true; spinner.hidden = false; test.setAttribute("aria-busy", "true");
      result.className = ""; result.textContent = "Testing the connection…";
      call("POST", test.dataset.url, { connection: connection(form) }).then(function (res) {
        var ok = res.ok && res.data.ok;
        result.className = ok ? "ok" : "bad";
        result.textContent = ok ? "Connection works (" + (res.data.message || "answered") + ")."
          : "Connection failed: " + errorText(res).replace(/^the test connection failed: /i, "");
        submit.disabled = !ok;
        var why = form.querySelector("#buy-why"); if (why) why.hidden = ok;
      }).catch(function () { result.className = "bad"; result.textContent = "Connection failed: no answer."; })
        .then(function () { test.disabled = false; spinner.hidden = true; test.removeAttribute("aria-busy"); });
    });
  }

  // A bundle: the sentence and price were rendered with the page (with a promotion code, they
  // are asked for); the API refuses the purchase if the price changed since.
  function bindBundleBuy(form) {
    var idempotencyKey = null;
    var submit = form.querySelector("#bundle-buy-submit");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var code = codeOf(form);
      var terms = code
        ? fetch(form.dataset.confirmUrl + "?promotionCode=" + encodeURIComponent(code), { credentials: "same-origin" })
          .then(function (r) { return r.json(); })
        : Promise.resolve({ confirmation: form.dataset.confirm, quote: JSON.parse(form.dataset.quote) });
      terms.then(function (price) {
        if (codeRefused(form, price)) return;
        if (!price.confirmation) { flash(price.message || "This bundle cannot be priced.", true); return; }
        return confirmWith(price.confirmation, form.dataset.note).then(function (yes) {
          if (!yes) return;
          idempotencyKey = idempotencyKey || key();
          submit.disabled = true;
          submit.setAttribute("aria-busy", "true");
          var body = { bundle: form.dataset.bundle, confirmedPrice: price.quote };
          if (code) body.promotionCode = code;
          return call("POST", form.dataset.url, body, idempotencyKey).then(function (res) {
            submit.removeAttribute("aria-busy");
            if (res.ok) {
              idempotencyKey = null;
              flash("Bought. Its add-ons are being set up; your purchase shows below.");
              settle();
            } else {
              submit.disabled = false;
              if (!codeRefused(form, res.data)) flash(errorText(res), true);
            }
          });
        });
      }).catch(function () { submit.disabled = false; flash("The marketplace did not answer; try again.", true); });
    });
  }

  function bindChange(form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var values = { plan: form.querySelector('[name="plan"]').value,
        quantity: parseInt(form.querySelector('[name="quantity"]').value, 10) || 1 };
      priced(form, values).then(function (price) {
        return confirmWith(price.confirmation || "Change this subscription?", "The new price applies from now on.")
          .then(function (yes) {
            if (!yes) return;
            return call("PATCH", form.dataset.change, { plan: values.plan, quantity: values.quantity,
              confirmedPrice: price.quote }).then(function (res) {
              flash(res.ok ? "Changed." : errorText(res), !res.ok);
              if (res.ok) settle();
            });
          });
      });
    });
  }

  // A superadmin's step on the approval ladder, posted to the console API.
  function bindStep(form) {
    var stepKey = null;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      var body = { action: form.dataset.action };
      var amount = form.querySelector('[name="amount"]');
      var text = form.dataset.confirm;
      if (amount) {
        var currency = form.querySelector('[name="currency"]').value;
        body.invoice = { amount: amount.value, currency: currency };
        text = text.replace("an invoice", "an invoice of " + amount.value + " " + currency);
      }
      var reason = form.querySelector('[name="reason"]');
      if (reason) body.reason = reason.value;
      confirmWith(text).then(function (yes) {
        if (!yes) return;
        stepKey = stepKey || key();
        call("POST", form.dataset.actionUrl, body, stepKey).then(function (res) {
          flash(res.ok ? "Done: " + form.querySelector("button").textContent + "." : errorText(res), !res.ok);
          if (res.ok) { stepKey = null; settle(); }
        });
      });
    });
  }

  // An icon that cannot load (an offline network, a moved image) leaves the initial showing.
  function dropBrokenIcons() {
    document.querySelectorAll(".tile img").forEach(function (img) {
      if (img.complete && img.naturalWidth === 0) img.remove();
      else img.addEventListener("error", function () { img.remove(); });
    });
  }

  function bind() {
    dropBrokenIcons();
    document.querySelectorAll("form[data-action-url]:not([data-bound])").forEach(function (f) { f.dataset.bound = "1"; bindStep(f); });
    document.querySelectorAll("#buy-form:not([data-bound])").forEach(function (f) { f.dataset.bound = "1"; bindBuy(f); });
    document.querySelectorAll("#bundle-buy-form:not([data-bound])").forEach(function (f) { f.dataset.bound = "1"; bindBundleBuy(f); });
    document.querySelectorAll("form[data-change]:not([data-bound])").forEach(function (f) { f.dataset.bound = "1"; bindChange(f); });
    document.querySelectorAll("button[data-call]:not([data-bound])").forEach(function (b) {
      b.dataset.bound = "1";
      b.addEventListener("click", function (ev) {
        ev.preventDefault(); // the form posts only without this script
        var parts = b.dataset.call.split(" ");
        confirmWith(b.dataset.confirm || "Are you sure?").then(function (yes) {
          if (!yes) return;
          b.disabled = true;
          call(parts[0], parts[1], b.dataset.body ? JSON.parse(b.dataset.body) : undefined).then(function (res) {
            flash(res.ok ? "Done." : errorText(res), !res.ok);
            b.disabled = false;
            if (res.ok) settle();
          });
        });
      });
    });
    var go = document.getElementById("partner-go");
    if (go && !go.dataset.bound) {
      go.dataset.bound = "1";
      go.addEventListener("click", function () { document.getElementById("partner-note").hidden = false; });
    }
  }

  // Tabs: one panel at a time once scripts run (all of them, one after another, without).
  function tabs() {
    var nav = document.querySelector(".tabs");
    if (!nav) return;
    var links = Array.prototype.slice.call(nav.querySelectorAll("a"));
    nav.setAttribute("role", "tablist");
    function show(id, focus) {
      links.forEach(function (a) {
        var on = a.getAttribute("href") === "#" + id;
        a.setAttribute("aria-selected", on ? "true" : "false");
        a.tabIndex = on ? 0 : -1;
        var panel = document.getElementById(a.getAttribute("href").slice(1));
        if (panel) panel.hidden = !on;
        if (on && focus) a.focus();
      });
    }
    links.forEach(function (a, i) {
      a.setAttribute("role", "tab");
      var panel = document.getElementById(a.getAttribute("href").slice(1));
      if (panel) { panel.setAttribute("role", "tabpanel"); panel.tabIndex = 0; }
      a.addEventListener("click", function (ev) { ev.preventDefault(); show(a.getAttribute("href").slice(1)); });
      a.addEventListener("keydown", function (ev) {
        var next = ev.key === "ArrowRight" ? i + 1 : ev.key === "ArrowLeft" ? i - 1 : null;
        if (next === null) return;
        ev.preventDefault();
        var to = links[(next + links.length) % links.length];
        show(to.getAttribute("href").slice(1), true);
      });
    });
    show("overview");
  }

  // scripts/dev's sign-in links carry the token in the fragment, which no server sees.
  var signin = document.getElementById("signin");
  if (signin && location.hash.indexOf("#token=") === 0) {
    signin.querySelector("#token").value = decodeURIComponent(location.hash.slice(7));
    history.replaceState(null, "", location.pathname + location.search);
    signin.submit();
  }

  bind();
  tabs();
  if (tenant && window.EventSource) {
    // Every change of the tenant's entitlements re-renders the live parts.
    var stream = new EventSource("/v1/tenants/" + encodeURIComponent(tenant) + "/entitlements/stream");
    stream.addEventListener("entitlement", refresh);
    window.marketplaceStream = stream;
    // An open stream holds one of the browser's few connections to this host: let it go.
    window.addEventListener("pagehide", function () { stream.close(); });
  }
  // Requests on their way change without an entitlement (pending review → invoice issued).
  setInterval(function () { if (document.querySelector("[data-pending]")) refresh(); }, 5000);
})();
