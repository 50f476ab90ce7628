/* Runbook page behaviour, self-contained (no outside requests). */
(function () {
  "use strict";

  function labelText(label) {
    return label.textContent.trim();
  }

  // The environments, from the page's "Commands for" switch (render.env_switch): name, title,
  // production, and on an alarm page the alarm's name in that environment.
  function environments(nav) {
    return Array.from(nav.querySelectorAll("a[data-env]")).map(function (a) {
      return {
        name: a.dataset.env,
        title: a.dataset.title || a.dataset.env,
        production: a.hasAttribute("data-production"),
        alarm: (a.dataset.name || "").toLowerCase(),
        link: a,
      };
    });
  }

  function byName(envs, name) {
    return envs.filter(function (e) { return e.name === name; })[0] || null;
  }

  // ?env= ignores case and takes an environment's title too ("PROD", "production").
  function fromQuery(envs, value) {
    var v = value.trim().toLowerCase();
    return envs.filter(function (e) {
      return e.name.toLowerCase() === v || e.title.toLowerCase() === v;
    })[0] || null;
  }

  // A search hit opened by an environment's full alarm name. Material adds the query's terms
  // as ?h= (for "kanjona-prod-lambda-errors": "prod lambda errors"): the one environment whose
  // alarm name holds those terms in that order.
  function fromSearch(envs, query) {
    var q = query.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
    if (!q) return null;
    var hits = envs.filter(function (e) {
      return e.alarm && ("-" + e.alarm + "-").indexOf("-" + q + "-") >= 0;
    });
    return hits.length === 1 ? hits[0] : null;
  }

  function stored(envs) {
    if (typeof window.__md_get !== "function") return null;
    var tabs = window.__md_get("__tabs") || [];
    for (var i = 0; i < tabs.length; i++) {
      var e = byName(envs, tabs[i]);
      if (e) return e;
    }
    return null;
  }

  function remember(env) {
    // Same storage entry Material's content.tabs.link writes on a click (most recent first).
    if (typeof window.__md_get === "function" && typeof window.__md_set === "function") {
      var tabs = window.__md_get("__tabs") || [];
      window.__md_set("__tabs", [env].concat(tabs.filter(function (t) { return t !== env; })));
    }
  }

  // Check the env's tab in every tab set. Run before Material mounts its tab components (it
  // mounts them asynchronously after DOMContentLoaded), so it starts from this state.
  function checkTabs(env) {
    document.querySelectorAll(".tabbed-set").forEach(function (set) {
      var labels = set.querySelectorAll(":scope > .tabbed-labels > label");
      for (var i = 0; i < labels.length; i++) {
        if (labelText(labels[i]) !== env) continue;
        var input = document.getElementById(labels[i].htmlFor);
        if (input) input.checked = true;
        break;
      }
    });
  }

  // Where the reader is: the body says which environment (CSS marks production), the
  // switch says which link is current.
  function show(envs, env) {
    var e = byName(envs, env);
    if (!e) return;
    document.body.dataset.rbEnv = e.name;
    document.body.classList.toggle("rb-production", e.production);
    document.querySelectorAll("code.rb-per-env").forEach(function (code) {
      code.hidden = code.dataset.rbEnv !== e.name;
    });
    envs.forEach(function (x) {
      if (x.name === e.name) x.link.setAttribute("aria-current", "true");
      else x.link.removeAttribute("aria-current");
    });
  }

  // Labels and blocks say their environment: production tabs stand out, and a printed page
  // says which block is for which environment.
  function markTabs(envs) {
    document.querySelectorAll(".tabbed-set").forEach(function (set) {
      var labels = set.querySelectorAll(":scope > .tabbed-labels > label");
      var blocks = set.querySelectorAll(":scope > .tabbed-content > .tabbed-block");
      labels.forEach(function (label, i) {
        var e = byName(envs, labelText(label));
        if (!e) return;
        label.classList.toggle("rb-tab-production", e.production);
        // A tab whose command changes state (it holds the caution box) says so on its label.
        var changes = !!(blocks[i] && blocks[i].querySelector(".admonition.rb-changes"));
        label.classList.toggle("rb-tab-changes", changes);
        if (changes) label.title = "This command changes state in " + e.name;
        if (blocks[i]) {
          blocks[i].dataset.rbEnv = e.name;
          blocks[i].classList.toggle("rb-block-production", e.production);
          blocks[i].classList.toggle("rb-block-changes", changes);
        }
      });
    });
  }

  function notice(nav, envs, value, chosen) {
    var old = document.querySelector(".rb-env-notice");
    if (old) old.remove();
    var box = document.createElement("p");
    box.className = "rb-env-notice";
    box.setAttribute("role", "alert");
    box.textContent = "Unknown environment \u201c" + value + "\u201d in the link: showing " +
      chosen.title + " (" + chosen.name + "). Known: " +
      envs.map(function (e) { return e.title + " (" + e.name + ")"; }).join(", ") + ".";
    nav.insertAdjacentElement("afterend", box);
  }

  function choose(envs, env) {
    // A click on one label: Material's content.tabs.link moves every set and stores it.
    var label = Array.from(document.querySelectorAll(".tabbed-set > .tabbed-labels > label"))
      .filter(function (l) { return labelText(l) === env; })[0];
    if (label) label.click();
    else checkTabs(env);
    remember(env);
    show(envs, env);
    var url = new URL(window.location.href);
    url.searchParams.set("env", env);
    window.history.replaceState(window.history.state, "", url.toString());
  }

  function setUp() {
    var nav = document.querySelector("nav.rb-env-switch");
    if (!nav) return;
    var envs = environments(nav);
    var params = new URLSearchParams(window.location.search);
    var query = params.get("env");
    var env = null;
    if (query !== null) {
      env = fromQuery(envs, query);
    }
    env = env || (params.get("h") ? fromSearch(envs, params.get("h")) : null);
    var picked = !!env;
    env = env || stored(envs) || byName(envs, nav.dataset.default) || envs[0];
    if (query !== null && !fromQuery(envs, query)) notice(nav, envs, query, env);
    checkTabs(env.name);
    if (picked) remember(env.name);
    markTabs(envs);
    show(envs, env.name);
    envs.forEach(function (e) {
      e.link.addEventListener("click", function (event) {
        event.preventDefault();
        choose(envs, e.name);
      });
    });
    // A click on a tab label changes the environment too.
    document.querySelectorAll(".tabbed-set > input").forEach(function (input) {
      input.addEventListener("change", function () {
        var label = document.querySelector('label[for="' + input.id + '"]');
        if (label && byName(envs, labelText(label))) show(envs, labelText(label));
      });
    });
  }

  // Wrap <fill-in> tokens of code blocks so the reader sees what to replace.
  function markFillIns() {
    var spans = document.querySelectorAll("pre code span, pre code");
    var pattern = /<[a-z][a-z0-9]*(?:-[a-z0-9]+)+>/g;
    spans.forEach(function (node) {
      node.childNodes.forEach(function (child) {
        if (child.nodeType !== Node.TEXT_NODE || !pattern.test(child.nodeValue)) return;
        pattern.lastIndex = 0;
        var frag = document.createDocumentFragment();
        var text = child.nodeValue, last = 0, m;
        while ((m = pattern.exec(text))) {
          frag.appendChild(document.createTextNode(text.slice(last, m.index)));
          var mark = document.createElement("mark");
          mark.className = "rb-fill-in";
          mark.textContent = m[0];
          frag.appendChild(mark);
          last = m.index + m[0].length;
        }
        frag.appendChild(document.createTextNode(text.slice(last)));
        child.parentNode.replaceChild(frag, child);
      });
    });
  }

  function init() {
    markFillIns();
    setUp();
  }

  // Material's document$ emits each page (also with instant navigation); without the theme's
  // bundle, fall back to the DOM being ready.
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(init);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
