// The report's only script: filter the cluster sections, open or close them all, and
// copy an explain command. Charts and audio work without it.
(function () {
  "use strict";
  var filter = document.getElementById("cluster-filter");
  var sections = Array.prototype.slice.call(document.querySelectorAll("details.cluster"));
  var counter = document.getElementById("cluster-count");

  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    sections.forEach(function (section) {
      var haystack = section.getAttribute("data-search");
      var match = words.every(function (word) {
        return /^\d+$/.test(word)
          ? section.getAttribute("data-cluster") === word
          : haystack.indexOf(word) >= 0;
      });
      section.hidden = !match;
      if (match) { shown += 1; }
    });
    counter.textContent = shown + " of " + sections.length + " clusters";
  }

  if (filter) {
    filter.addEventListener("input", applyFilter);
    applyFilter();
  }

  document.querySelectorAll("button[data-open]").forEach(function (button) {
    button.addEventListener("click", function () {
      var open = button.getAttribute("data-open") === "1";
      sections.forEach(function (section) {
        if (!section.hidden) { section.open = open; }
      });
    });
  });

  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.previousElementSibling.textContent;
      var done = function () {
        button.textContent = "copied";
        setTimeout(function () { button.textContent = "copy"; }, 1200);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {});
      } else {
        var area = document.createElement("textarea");
        area.value = text;
        document.body.appendChild(area);
        area.select();
        document.execCommand("copy");
        document.body.removeChild(area);
        done();
      }
    });
  });
})();
