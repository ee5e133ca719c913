//! `/docs`: the API explorer (Swagger UI), every file compiled into the binary, pointed at
//! the live OpenAPI document.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;
use crate::http::extract::Path;

/// The bundled Swagger UI version (see `assets/swagger-ui/README.md`); asset URLs carry it, so
/// they may be cached for a long time.
const VERSION: &str = "5.35.0";

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Ferrobase API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css?v={VERSION}">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png?v={VERSION}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js?v={VERSION}"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/api/v1/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    });
  </script>
</body>
</html>
"##;

/// The bundled files: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    ("swagger-ui.css", "text/css; charset=utf-8", include_bytes!("../../../assets/swagger-ui/swagger-ui.css")),
    ("favicon-32x32.png", "image/png", include_bytes!("../../../assets/swagger-ui/favicon-32x32.png")),
];

/// `GET /docs`.
pub async fn page() -> Html<String> {
    Html(PAGE.replace("{VERSION}", VERSION))
}

/// `GET /docs/{asset}`: a bundled file, cacheable for a year (its URL changes with the version).
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, bytes) =
        ASSETS.iter().find(|(n, ..)| *n == name).ok_or_else(|| ApiError::not_found(format!("no file /docs/{name}")))?;
    Ok((
        [(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")],
        *bytes,
    )
        .into_response())
}
