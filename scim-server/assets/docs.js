// Starts Swagger UI on /docs against this server's own OpenAPI document. A separate file, not an
// inline script, so the page's Content-Security-Policy can forbid inline scripts. The bearer
// token is entered with the page's "Authorize" button and kept only in this page's memory.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
    displayRequestDuration: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
