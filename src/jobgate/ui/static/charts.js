// Charts of the dashboard, drawn by uPlot (vendored) from /ui/charts/data.json.
(function () {
  "use strict";
  var box = document.getElementById("chart-states");
  if (!box || typeof uPlot === "undefined") return;
  function draw(data) {
    var width = Math.min(box.parentElement.clientWidth || 800, 1000);
    var common = { width: width, height: 260, scales: { x: { time: true } } };
    new uPlot(Object.assign({}, common, {
      series: [{}, { label: "waiting", stroke: "#8a5a00" }, { label: "running", stroke: "#005fb8" },
               { label: "done", stroke: "#1a7f37" }]
    }), [data.x, data.waiting, data.running, data.done], box);
    new uPlot(Object.assign({}, common, {
      series: [{}, { label: "submitted per minute", stroke: "#6f42c1" },
               { label: "finished per minute", stroke: "#1a7f37" }]
    }), [data.x, data.submitted, data.finished], document.getElementById("chart-throughput"));
  }
  fetch(box.dataset.src, { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(draw);
})();
