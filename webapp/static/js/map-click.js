/* Atlas Énergie 74 — map clicks.
 * Plotly reports clicks on points only through JavaScript events, which htmx
 * cannot listen to. This file forwards a click on a commune point to the
 * "Commune" field of the filter form and fires its change event: the form's own
 * hx-get then loads the commune (zoom, addresses, detail) and updates the URL.
 */
(function () {
  "use strict";
  if (window.atlasMapClick) {
    return;
  }
  window.atlasMapClick = true;

  var CODE = /\(([0-9][0-9AB][0-9]{3})\)$/;

  function chooseCommune(event) {
    var point = event && event.points && event.points[0];
    var match = point && typeof point.text === "string" && point.text.match(CODE);
    var field = document.getElementById("filtre-commune");
    if (!match || !field) {
      return;
    }
    field.value = point.text;
    field.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function bind() {
    var graph = document.getElementById("carte-communes");
    if (graph && graph.on && !graph.atlasBound) {
      graph.atlasBound = true;
      graph.on("plotly_click", chooseCommune);
    }
  }

  document.addEventListener("DOMContentLoaded", bind);
  document.addEventListener("htmx:afterSettle", bind);
  bind();
})();
