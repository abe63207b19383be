/* Starts Swagger UI or ReDoc (packaged files, see README.md) on the hub's OpenAPI document. */
(function () {
  "use strict";
  var me = document.currentScript;
  var spec = decodeURIComponent(me.dataset.spec);
  if (me.dataset.kind === "swagger") {
    window.SwaggerUIBundle({url: spec, dom_id: "#swagger-ui", validatorUrl: null, deepLinking: true,
      persistAuthorization: false, layout: "BaseLayout",
      presets: [window.SwaggerUIBundle.presets.apis]});
  } else {
    window.Redoc.init(spec, {hideDownloadButton: false, disableSearch: false}, document.getElementById("redoc"));
  }
})();
