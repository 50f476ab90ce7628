/* Runbook page behaviour, self-contained (no outside requests). */
(function () {
  "use strict";

  // ?env=prod selects the prod tabs, as a click would (Material then keeps the choice).
  function selectEnvFromQuery() {
    var env = new URLSearchParams(window.location.search).get("env");
    if (!env) return;
    var labels = document.querySelectorAll(".tabbed-labels > label");
    for (var i = 0; i < labels.length; i++) {
      if (labels[i].textContent.trim() === env) {
        labels[i].click();
        return;
      }
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

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
