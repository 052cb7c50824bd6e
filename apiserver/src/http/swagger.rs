//! The Swagger UI at `/swagger-ui/`: the assets `utoipa-swagger-ui` vendors
//! at build time (nothing is fetched at build or run time), configured to
//! list one document per group/version the server publishes under
//! `/openapi/v3`, core/v1 first.
//!
//! It is served like every other path: to authenticated clients, so a
//! browser reaches it through `kubectl proxy`. Every response carries a
//! strict Content-Security-Policy: scripts and connections only from this
//! origin, no inline or evaluated script (the UI's configuration is a file,
//! `swagger-initializer.js`, not an inline block), no framing. This module
//! only serves files; the documents it points at come from `openapi/`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};

use super::ApiServer;
use crate::error::{ApiError, ApiResult, Reason};

/// Where the UI lives.
pub const PREFIX: &str = "/swagger-ui";

/// Inline styles are allowed (the UI sets element styles from script);
/// inline scripts, `eval`, plugins and framing are not.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     font-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'none'";

pub fn is_swagger_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/swagger-ui/")
}

/// The `/openapi/v3` document paths (`api/v1`, `apis/apps/v1`, …) of the
/// served group/versions, core/v1 first and the rest in name order.
pub fn document_paths(server: &ApiServer) -> Vec<String> {
    let mut paths: Vec<String> = super::served_descriptors(server)
        .iter()
        .map(|r| {
            if r.group.is_empty() {
                format!("api/{}", r.version)
            } else {
                format!("apis/{}/{}", r.group, r.version)
            }
        })
        .collect();
    paths.sort_by(|a, b| (a != "api/v1", a).cmp(&(b != "api/v1", b)));
    paths.dedup();
    paths
}

/// `(name, url)` of each document the UI lists.
fn document_urls(paths: &[String]) -> Vec<(String, String)> {
    paths
        .iter()
        .map(|p| (p.clone(), format!("/openapi/v3/{p}")))
        .collect()
}

fn config(urls: &[(String, String)]) -> utoipa_swagger_ui::Config<'_> {
    let urls: Vec<utoipa_swagger_ui::Url<'_>> = urls
        .iter()
        .enumerate()
        .map(|(i, (name, url))| utoipa_swagger_ui::Url::with_primary(name, url, i == 0))
        .collect();
    utoipa_swagger_ui::Config::new(urls)
        .try_it_out_enabled(true)
        .filter(true)
        .display_request_duration(true)
}

fn with_policy(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// Serves one file of the UI.
pub fn handle(server: &Arc<ApiServer>, path: &str) -> ApiResult<Response<Body>> {
    let Some(tail) = path.strip_prefix("/swagger-ui/") else {
        // Relative asset links need the trailing slash.
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/swagger-ui/"));
        return Ok(with_policy(r));
    };
    // Only the initializer embeds the configuration.
    let urls = if tail == "swagger-initializer.js" {
        document_urls(&document_paths(server))
    } else {
        Vec::new()
    };
    let file = utoipa_swagger_ui::serve(tail, Arc::new(config(&urls)))
        .map_err(|e| ApiError::internal(format!("swagger-ui: {e}")))?
        .ok_or_else(|| {
            ApiError::new(
                Reason::NotFound,
                "the server could not find the requested resource",
            )
        })?;
    let mut r = Response::new(Body::from(file.bytes.into_owned()));
    let content_type = HeaderValue::from_str(&file.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    r.headers_mut().insert(header::CONTENT_TYPE, content_type);
    Ok(with_policy(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_no_inline_script() {
        let file = utoipa_swagger_ui::serve("index.html", Arc::new(config(&[])))
            .unwrap()
            .unwrap();
        let html = String::from_utf8(file.bytes.into_owned()).unwrap();
        // Every <script> element loads a file of this origin.
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert!(!scripts.is_empty());
        for s in scripts {
            let tag_end = s.find('>').unwrap();
            assert!(s[..tag_end].contains("src=\"./"), "{s}");
            let body = &s[tag_end + 1..s.find("</script>").unwrap()];
            assert!(body.trim().is_empty(), "inline script: {body}");
        }
        assert!(!html.contains(" on"), "no inline event handlers");
    }

    #[test]
    fn the_initializer_lists_every_document_core_first() {
        let urls = document_urls(&["api/v1".to_string(), "apis/apps/v1".to_string()]);
        let file = utoipa_swagger_ui::serve("swagger-initializer.js", Arc::new(config(&urls)))
            .unwrap()
            .unwrap();
        let js = String::from_utf8(file.bytes.into_owned()).unwrap();
        assert!(js.contains("\"/openapi/v3/api/v1\""), "{js}");
        assert!(js.contains("\"/openapi/v3/apis/apps/v1\""), "{js}");
        assert!(js.contains("\"urls.primaryName\": \"api/v1\""), "{js}");
        assert!(!js.contains("petstore"), "{js}");
    }
}
