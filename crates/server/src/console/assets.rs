//! The console's built front end, embedded in the binary.
//!
//! `console/` (repository root) holds the sources; `npm run build --prefix console`
//! (esbuild, minified) writes `crates/server/console-dist/`, which is committed, so the
//! crate builds on a machine without Node. `SOURCES.sha256` in that folder is the digest
//! of the sources it was built from; a test recomputes it and fails when the committed
//! build is stale.
use axum::body::Body;
use axum::extract::Path;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

const INDEX: &[u8] = include_bytes!("../../console-dist/index.html");
const APP_JS: &[u8] = include_bytes!("../../console-dist/app.js");
const APP_CSS: &[u8] = include_bytes!("../../console-dist/app.css");

/// The page may load only its own script and style, talk only to its own origin, and
/// never be framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn serve(bytes: &'static [u8], content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
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

pub async fn index() -> Response {
    serve(INDEX, "text/html; charset=utf-8")
}

pub async fn file(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => serve(APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => serve(APP_CSS, "text/css; charset=utf-8"),
        _ => {
            let mut r = Response::new(Body::from("not found"));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};
    use std::path::{Path, PathBuf};

    /// The same digest as `console/build.mjs`: every file under `console/src`, then
    /// `build.mjs`, `package.json` and `package-lock.json`, each as its path relative to
    /// `console/`, a NUL, its length, a NUL and its bytes, paths in byte order.
    fn sources_digest(root: &Path) -> String {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(&root.join("src"), &mut files);
        for f in ["build.mjs", "package.json", "package-lock.json"] {
            files.push(root.join(f));
        }
        let mut named: Vec<(String, PathBuf)> = files
            .into_iter()
            .map(|p| {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                (rel, p)
            })
            .collect();
        named.sort();
        let mut h = Sha256::new();
        for (rel, p) in named {
            let bytes = std::fs::read(&p).unwrap();
            h.update(rel.as_bytes());
            h.update([0]);
            h.update(bytes.len().to_string().as_bytes());
            h.update([0]);
            h.update(&bytes);
        }
        hex::encode(h.finalize())
    }

    #[test]
    fn the_committed_console_build_is_not_stale() {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = crate_dir.join("../../console");
        let want = sources_digest(&root);
        let stamp = std::fs::read_to_string(crate_dir.join("console-dist/SOURCES.sha256"))
            .unwrap_or_default();
        assert_eq!(
            stamp.trim(),
            want,
            "crates/server/console-dist is stale: run `npm ci --prefix console && npm run build --prefix console` and commit it"
        );
    }

    #[test]
    fn the_embedded_page_loads_only_the_embedded_assets() {
        let index = std::str::from_utf8(super::INDEX).unwrap();
        assert!(index.contains("/console/assets/app.js"));
        assert!(index.contains("/console/assets/app.css"));
        assert!(!index.contains("<script>"), "inline scripts break the CSP");
        assert!(!super::APP_JS.is_empty() && !super::APP_CSS.is_empty());
    }
}
