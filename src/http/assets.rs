//! GraphiQL's scripts and styles, embedded in the binary (`web/vendor/`, see
//! `web/VENDORED.md`) and served under `/v1/assets/`: the playground needs
//! nothing from another origin. The names carry their version, so they are
//! cached for a year.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Name under `/v1/assets/`, content type, bytes.
pub const ASSETS: [(&str, &str, &[u8]); 4] = [
    (
        "graphiql-3.8.3.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/vendor/graphiql-3.8.3.min.js"),
    ),
    (
        "graphiql-3.8.3.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/vendor/graphiql-3.8.3.min.css"),
    ),
    (
        "react-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/vendor/react-18.3.1.production.min.js"),
    ),
    (
        "react-dom-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/vendor/react-dom-18.3.1.production.min.js"),
    ),
];

/// nspool's own scripts (`web/nspool/`): they change with nspool, so they
/// are revalidated rather than cached for a year.
pub const OWN_ASSETS: [(&str, &[u8]); 2] = [
    (
        "nspool-dashboard.js",
        include_bytes!("../../web/nspool/dashboard.js"),
    ),
    (
        "nspool-graphiql.js",
        include_bytes!("../../web/nspool/graphiql.js"),
    ),
];

/// The dashboard's reload script, as its page names it.
pub const DASHBOARD_SCRIPT: &str = "/v1/assets/nspool-dashboard.js";

pub async fn asset(Path(name): Path<String>) -> Response {
    if let Some((_, bytes)) = OWN_ASSETS.iter().find(|(n, _)| *n == name) {
        return (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *bytes,
        )
            .into_response();
    }
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn every_asset_matches_its_recorded_checksum() {
        let record = include_str!("../../web/VENDORED.md");
        for (name, _, bytes) in ASSETS {
            let sum = hex::encode(Sha256::digest(bytes));
            let row = record
                .lines()
                .find(|l| l.contains(&format!("`vendor/{name}`")))
                .unwrap_or_else(|| panic!("web/VENDORED.md has no row for {name}"));
            assert!(row.contains(&sum), "{name}: {sum} not in {row}");
        }
    }
}
