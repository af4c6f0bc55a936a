//! The console page and its script, strings and style, embedded in the binary: no build step,
//! no third-party code. Every answer carries a strict Content-Security-Policy (scripts and
//! styles from this origin only, no inline script, requests to this origin only, no framing).

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The page.
const PAGE: &str = include_str!("../../assets/console/index.html");
/// The application (an ES module).
const SCRIPT: &str = include_str!("../../assets/console/console.js");
/// The English and Russian strings (an ES module).
const STRINGS: &str = include_str!("../../assets/console/i18n.js");
/// The style.
const STYLE: &str = include_str!("../../assets/console/console.css");

/// The policy every console answer carries.
pub(super) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The supervisor's console (it asks for a supervisor or admin token and keeps it in the tab).
#[utoipa::path(
    get,
    path = "/console",
    operation_id = "console_page",
    tag = "console",
    responses((status = 200, description = "The page (no credentials needed to load it; every view asks for the token).", content_type = "text/html; charset=utf-8", body = String)),
)]
pub(super) async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

/// The console's script.
#[utoipa::path(
    get,
    path = "/console/console.js",
    operation_id = "console_script",
    tag = "console",
    responses((status = 200, description = "The console's script (an ES module).", content_type = "text/javascript; charset=utf-8", body = String)),
)]
pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The console's strings in English and Russian.
#[utoipa::path(
    get,
    path = "/console/i18n.js",
    operation_id = "console_strings",
    tag = "console",
    responses((status = 200, description = "The console's strings (an ES module).", content_type = "text/javascript; charset=utf-8", body = String)),
)]
pub(super) async fn strings() -> Response {
    asset("text/javascript; charset=utf-8", STRINGS)
}

/// The console's style.
#[utoipa::path(
    get,
    path = "/console/console.css",
    operation_id = "console_style",
    tag = "console",
    responses((status = 200, description = "The console's style.", content_type = "text/css; charset=utf-8", body = String)),
)]
pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_has_no_inline_script_or_style_and_sets_no_html_from_data() {
        let page = super::PAGE;
        assert!(!page.contains("<script>"), "no inline script");
        let handler = page.match_indices(" on").any(|(i, _)| {
            let rest = &page[i + 3..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase()).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(!handler, "no inline event handler");
        assert!(!page.contains("<style") && !page.contains("style="), "no inline style");
        assert!(page.contains(r#"<script type="module" src="/console/console.js">"#));
        assert!(!super::SCRIPT.contains("innerHTML") && !super::SCRIPT.contains("insertAdjacentHTML"));
        assert!(!super::SCRIPT.contains("eval(") && !super::SCRIPT.contains("new Function"));
    }

    /// The keys of one language's block of `i18n.js` (`'key': ...` lines).
    fn keys(block: &str) -> std::collections::BTreeSet<&str> {
        block.lines().filter_map(|l| l.trim().strip_prefix('\'')?.split_once("':").map(|(k, _)| k)).collect()
    }

    #[test]
    fn english_and_russian_have_the_same_strings() {
        let (en, ru) = super::STRINGS.split_once("\n  ru: {").expect("a Russian block");
        let (en, ru) = (keys(en), keys(ru));
        assert!(en.len() > 100, "{} English strings", en.len());
        assert_eq!(en, ru, "the same keys in both languages");
        let script = super::SCRIPT;
        for (at, _) in script.match_indices("t('") {
            // `t(` itself, not the end of `split(` or `.get(`.
            if script[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_') {
                continue;
            }
            let key = script[at + 3..].split_once('\'').map_or("", |(k, _)| k);
            assert!(en.contains(key), "the script uses `{key}`, which has no string");
        }
    }
}
