//! HTML output: [`escape`] for every piece of text that did not come from this file, and the
//! page frame (style, navigation, flash message) with the headers every page carries.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// `text` with `& < > " '` replaced by character references, safe inside element content and
/// quoted attribute values.
///
/// ```
/// use demo::web::html::escape;
///
/// assert_eq!(escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Who the navigation bar is for.
#[derive(Debug, Clone, Copy)]
pub enum Viewer<'a> {
    /// Nobody logged in (or not known: a rejection page).
    Anonymous,
    /// A logged-in user and whether they hold `ADMIN`.
    User {
        /// The user id.
        name: &'a str,
        /// Whether to show the admin link.
        admin: bool,
        /// The admin acting as this user, for an impersonation session: every page then
        /// carries the impersonation banner.
        impersonated_by: Option<&'a str>,
    },
}

/// An HTML page: status, title, the viewer for the navigation, an optional flash message and
/// the body (already HTML: escape what goes into it).
#[derive(Debug)]
pub struct Page<'a> {
    /// The answer's status.
    pub status: StatusCode,
    /// The `<title>` and `<h1>` (escaped here).
    pub title: &'a str,
    /// Whose navigation bar.
    pub viewer: Viewer<'a>,
    /// A one-time message shown above the body (escaped here).
    pub flash: Option<&'a str>,
    /// The page's content, HTML.
    pub body: String,
}

const STYLE: &str = "\
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2430}\
header{background:#1f3a5f;color:#fff;padding:.6rem 1.5rem;display:flex;gap:1.2rem;align-items:center}\
header a{color:#fff;text-decoration:none}header .who{margin-left:auto;opacity:.85}\
header form{margin:0}header button{background:transparent;border:1px solid #fff;color:#fff}\
main{max-width:52rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;\
box-shadow:0 1px 3px rgba(0,0,0,.12)}\
h1{margin-top:0;font-size:1.6rem}\
.impersonation{background:#fff4ce;border-bottom:2px solid #c98a00;padding:.5rem 1.5rem;\
display:flex;gap:1rem;align-items:center}.impersonation form{margin:0 0 0 auto}\
.flash{background:#e6f4ea;border:1px solid #9fd3ad;padding:.6rem 1rem;border-radius:6px}\
.error{background:#fdecea;border:1px solid #f1a9a0;padding:.6rem 1rem;border-radius:6px}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.5rem;\
border-bottom:1px solid #e3e6ea;vertical-align:top}td.device{font-size:.85rem;color:#4a5361;\
max-width:22rem;overflow-wrap:anywhere}\
.badge{background:#1f3a5f;color:#fff;border-radius:4px;padding:.1rem .45rem;font-size:.8rem;\
white-space:nowrap}\
label{display:block;margin:.8rem 0 .2rem}input{font:inherit;padding:.4rem;width:18rem}\
button{font:inherit;padding:.35rem .9rem;border-radius:5px;border:1px solid #1f3a5f;\
background:#1f3a5f;color:#fff;cursor:pointer}button.danger{background:#b3261e;border-color:#b3261e}\
form.inline{display:inline;margin:0}.actions{margin-top:1.2rem}";

impl Page<'_> {
    /// The page for an anonymous viewer with status 200.
    pub fn public(title: &str, body: String) -> Page<'_> {
        Page {
            status: StatusCode::OK,
            title,
            viewer: Viewer::Anonymous,
            flash: None,
            body,
        }
    }

    /// The page's HTML text.
    pub fn render(&self) -> String {
        let nav = match self.viewer {
            Viewer::Anonymous => "<a href=\"/\">Home</a><a href=\"/login\">Log in</a>".to_owned(),
            Viewer::User { name, admin, .. } => format!(
                "<a href=\"/\">Home</a><a href=\"/account\">Account</a>\
                 <a href=\"/sessions\">Devices</a><a href=\"/history\">History</a>{admin}\
                 <span class=\"who\">Signed in as <strong>{name}</strong></span>\
                 <form method=\"post\" action=\"/logout\"><button>Log out</button></form>",
                admin = if admin {
                    "<a href=\"/admin\">Admin</a>"
                } else {
                    ""
                },
                name = escape(name),
            ),
        };
        let banner = match self.viewer {
            Viewer::User {
                name,
                impersonated_by: Some(admin),
                ..
            } => impersonation_banner(name, admin),
            _ => String::new(),
        };
        let flash = self
            .flash
            .map(|f| format!("<p class=\"flash\" role=\"status\">{}</p>", escape(f)))
            .unwrap_or_default();
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{title} · session-core demo</title><style>{STYLE}</style></head>\
             <body><header><strong>session-core demo</strong>{nav}</header>{banner}\
             <main><h1>{title}</h1>{flash}{body}</main></body></html>\n",
            title = escape(self.title),
            body = self.body,
        )
    }
}

/// The bar under the navigation of every page of an impersonation session: who is acted as,
/// by whom, and the way back (`POST /impersonation/stop`).
fn impersonation_banner(user: &str, admin: &str) -> String {
    format!(
        "<div id=\"impersonation\" class=\"impersonation\" role=\"alert\">\
         <span id=\"impersonation-text\">You are acting as <strong>{user}</strong> \
         (impersonated by <strong>{admin}</strong>)</span>\
         <form method=\"post\" action=\"/impersonation/stop\">\
         <button id=\"stop-impersonating\">Stop impersonating</button></form></div>",
        user = escape(user),
        admin = escape(admin),
    )
}

impl IntoResponse for Page<'_> {
    /// The page with `Cache-Control: no-store` (a page names its viewer, and after logout the
    /// browser's Back button must fetch it anew rather than show the copy), a strict
    /// `Content-Security-Policy` (no scripts at all; forms post to this site only) and
    /// `Referrer-Policy: same-origin` (a `next` in the URL stays on this site).
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::response::Html(self.render())).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_replaces_every_markup_character() {
        assert_eq!(escape("plain text"), "plain text");
        assert_eq!(
            escape("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("\"a\" & b"), "&quot;a&quot; &amp; b");
    }

    #[test]
    fn user_text_in_the_frame_is_escaped() {
        let page = Page {
            status: StatusCode::OK,
            title: "<t>",
            viewer: Viewer::User {
                name: "<b>x</b>",
                admin: false,
                impersonated_by: None,
            },
            flash: Some("<i>hi</i>"),
            body: String::new(),
        };
        let html = page.render();
        assert!(!html.contains("<b>x</b>") && html.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(!html.contains("<i>hi</i>") && html.contains("&lt;i&gt;hi&lt;/i&gt;"));
        assert!(!html.contains("<t>") && !html.contains("href=\"/admin\""));
        assert!(!html.contains("id=\"impersonation\""));
    }

    #[test]
    fn an_impersonation_session_shows_the_banner_with_both_names_escaped() {
        let page = Page {
            status: StatusCode::OK,
            title: "t",
            viewer: Viewer::User {
                name: "<u>",
                admin: false,
                impersonated_by: Some("<a>"),
            },
            flash: None,
            body: String::new(),
        };
        let html = page.render();
        assert!(html.contains(
            "You are acting as <strong>&lt;u&gt;</strong> (impersonated by \
             <strong>&lt;a&gt;</strong>)"
        ));
        assert!(html.contains("action=\"/impersonation/stop\""));
        assert!(!html.contains("<u>") && !html.contains("<a>"));
    }
}
