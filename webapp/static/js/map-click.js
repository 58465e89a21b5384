/* Atlas Énergie 74 — the map's only script, for what htmx cannot do itself.
 *
 * 1. Plotly reports clicks on points only through JavaScript events. A click on
 *    a commune point is forwarded to the "Commune" field of the filter form,
 *    whose change event makes the form's own hx-get load the commune (zoom,
 *    addresses, detail) and update the URL.
 * 2. Before htmx swaps new figures in, the old ones are purged (freeing their
 *    WebGL map) and lose their id: otherwise htmx's attribute settling copies
 *    the old figure's attributes onto the new one and later resets them,
 *    removing the classes plotly.js has just added.
 */
(function () {
  "use strict";
  if (window.atlasMapClick) {
    return;
  }
  window.atlasMapClick = true;

  var CODE = /\(([0-9][0-9AB][0-9]{3})\)$/;
  var FIGURES = ["carte-communes", "graphique-etiquettes"];

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

  function releaseFigures(event) {
    var detail = event.detail;
    var target = detail.target;
    if (!detail.shouldSwap || !target) {
      return;
    }
    // The map fragment also replaces the commune detail (out of band); a boosted
    // page load replaces everything.
    var all = target.id === "map-panel" || target === document.body;
    FIGURES.forEach(function (id) {
      var old = document.getElementById(id);
      if (old && (all || target.contains(old))) {
        if (window.Plotly) {
          window.Plotly.purge(old);
        }
        old.removeAttribute("id");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", bind);
  document.addEventListener("htmx:afterSettle", bind);
  document.addEventListener("htmx:beforeSwap", releaseFigures);
  bind();
})();
