// The dashboard's one script of its own: live tables keep the rows a person selected.
(function () {
  "use strict";
  var kept = [];
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    if (e.target.id !== "rows") return;
    kept = Array.prototype.map.call(
      e.target.querySelectorAll("input[name=ids]:checked"), function (box) { return box.value; });
  });
  document.addEventListener("htmx:sseMessage", function (e) {
    if (e.target.id !== "rows") return;
    kept.forEach(function (id) {
      var box = e.target.querySelector("input[name=ids][value='" + id + "']");
      if (box && !box.disabled) box.checked = true;
    });
  });
  // A followed log stays at its end while new lines come, unless the reader scrolled up.
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    var log = e.target;
    if (!log.classList || !log.classList.contains("log")) return;
    var atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
    if (atEnd) setTimeout(function () { log.scrollTop = log.scrollHeight; }, 0);
  });
})();
