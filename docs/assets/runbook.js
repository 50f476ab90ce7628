/* Runbook page behaviour, self-contained (no outside requests). */
(function () {
  "use strict";

  function labelText(label) {
    return label.textContent.trim();
  }

  // ?env=prod (the link in an alarm's description) selects the prod tab of every tab set, and
  // remembers it the way a click does, so the next pages open on prod too. The inputs are
  // checked before Material mounts its tab components (it mounts them asynchronously after
  // DOMContentLoaded), so Material starts from this state: indicator and linking included.
  function selectEnvFromQuery() {
    var env = new URLSearchParams(window.location.search).get("env");
    if (!env) return;
    var found = false;
    document.querySelectorAll(".tabbed-set").forEach(function (set) {
      var labels = set.querySelectorAll(":scope > .tabbed-labels > label");
      for (var i = 0; i < labels.length; i++) {
        if (labelText(labels[i]) !== env) continue;
        var input = document.getElementById(labels[i].htmlFor);
        if (input) {
          input.checked = true;
          found = true;
        }
        break;
      }
    });
    // Same storage entry Material's content.tabs.link writes on a click (most recent first).
    if (found && typeof window.__md_get === "function" && typeof window.__md_set === "function") {
      var tabs = window.__md_get("__tabs") || [];
      window.__md_set("__tabs", [env].concat(tabs.filter(function (t) { return t !== env; })));
    }
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
    selectEnvFromQuery();
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
