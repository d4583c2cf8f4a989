//! [`CsrfPolicy`]: which state-changing requests count as cross-site, the attack cookie
//! sessions invite. The axum `SessionLayer` and the actix-web `SessionMiddleware` apply it
//! (`with_csrf`; on by default) before anything else of a request runs.
//!
//! A browser attaches the session cookie to requests that another site makes it send. The
//! policy refuses `POST`, `PUT`, `PATCH` and `DELETE` requests that a browser marks as coming
//! from elsewhere:
//! - an `Origin` header naming another origin than the site's (or `Origin: null`, or two
//!   `Origin` headers);
//! - `Sec-Fetch-Site: cross-site` (unless the `Origin` is one of the
//!   [allowed origins](CsrfPolicy::with_allowed_origins)).
//!
//! Origins are compared whole: scheme, host and port (`https://app.example` is
//! `https://app.example:443`, and neither is `http://app.example`). The site's origin is, in
//! this order:
//! - the [allowed origins](CsrfPolicy::with_allowed_origins), when set: exactly those, and the
//!   `Host` header plays no part. Set them whenever the app sits behind a proxy that changes the
//!   host, the port or the scheme;
//! - otherwise `{scheme}://{Host}`. A server cannot see from a request which scheme the
//!   *browser* used (behind a TLS-terminating proxy every request arrives over plain HTTP), so
//!   the scheme is configured: `https` by default (as the session cookie is `Secure` by
//!   default, browsers only send it over https), `http` with
//!   [`CsrfPolicy::with_site_scheme`] for a site served over plain http. `X-Forwarded-Proto` is
//!   **not** consulted: any client can send it. One exception: on a loopback host
//!   (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`) an `http` origin of the same host
//!   and port passes too, since browsers treat `http://localhost` as secure (they send `Secure`
//!   cookies to it) and no one but the machine itself can serve a page there.
//!
//! Same-origin requests pass, and so do requests with neither header (non-browser clients such
//! as curl, which carry no ambient cookies).

use http::uri::{Authority, Scheme};
use http::Uri;

use crate::error::Error;
use crate::logging::log_safe;
use crate::web::rejection::Rejection;

/// The request facts the policy looks at, handed over as bytes by each adapter (the frameworks
/// use different `http` crate versions).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CsrfRequest<'a, O> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The values of every `Origin` header.
    pub origins: O,
    /// The `Sec-Fetch-Site` header.
    pub sec_fetch_site: Option<&'a [u8]>,
    /// The `Host` header.
    pub host: Option<&'a [u8]>,
    /// The authority of the request target, used when there is no `Host` header.
    pub uri_authority: Option<&'a str>,
    /// The path, for the audit log.
    pub path: &'a str,
}

/// Which origins may send state-changing requests; see the module docs.
#[derive(Debug, Clone)]
pub struct CsrfPolicy {
    /// `Some`: exactly these origins; `None`: the site's own, `{site_scheme}://{Host}`.
    allowed: Option<Vec<Origin>>,
    site_scheme: Scheme,
}

impl Default for CsrfPolicy {
    /// The policy for a site served over https whose origin is `https://{Host}`.
    fn default() -> Self {
        Self {
            allowed: None,
            site_scheme: Scheme::HTTPS,
        }
    }
}

impl CsrfPolicy {
    /// Allows exactly `origins` (each `scheme://host[:port]`, `http` or `https`, no path) on
    /// state-changing requests; the `Host` header then plays no part. An `Origin` that differs
    /// from every one of them in scheme, host or port is refused.
    ///
    /// ```
    /// use session_core::web::CsrfPolicy;
    ///
    /// let policy = CsrfPolicy::default()
    ///     .with_allowed_origins(["https://app.example", "https://admin.example:8443"])?;
    /// assert!(CsrfPolicy::default().with_allowed_origins(["app.example"]).is_err());
    /// # Ok::<(), session_core::Error>(())
    /// ```
    ///
    /// **Security:** every listed origin can make a logged-in browser write with its session;
    /// list only origins you serve.
    ///
    /// # Errors
    /// [`Error::Config`] for an entry that is not such an origin, or for an empty list.
    pub fn with_allowed_origins<I, S>(mut self, origins: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allowed = origins
            .into_iter()
            .map(|o| {
                let o = o.as_ref().trim();
                Origin::parse(o)
                    .filter(|origin| {
                        origin.scheme == Scheme::HTTP || origin.scheme == Scheme::HTTPS
                    })
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "allowed origin {o:?}: expected scheme://host[:port] with scheme \
                             http or https and no path, e.g. https://app.example"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if allowed.is_empty() {
            return Err(Error::Config(
                "no allowed origins given: every browser write would be refused".to_owned(),
            ));
        }
        self.allowed = Some(allowed);
        Ok(self)
    }

    /// Sets the scheme of the site's own origin `{scheme}://{Host}` (default `https`), used
    /// when no [allowed origins](CsrfPolicy::with_allowed_origins) are set.
    ///
    /// **Security:** with `http`, a site that is in fact served over https accepts writes from
    /// pages on `http://` its host, which anyone on the network path can forge.
    #[must_use]
    pub fn with_site_scheme(mut self, scheme: Scheme) -> Self {
        self.site_scheme = scheme;
        self
    }

    /// True for the methods the policy checks (state-changing ones); a read passes without a
    /// look at its headers.
    pub(crate) fn guards(method: &str) -> bool {
        matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
    }

    /// `Err(`[`Rejection::CrossSite`]`)` (audit-logged) when the request is a cross-site write.
    ///
    /// # Errors
    /// The refusal, naming the reason.
    pub(crate) fn check<'a, O>(&self, req: CsrfRequest<'a, O>) -> Result<(), Rejection>
    where
        O: Iterator<Item = &'a [u8]>,
    {
        let (method, path) = (req.method, req.path);
        match self.cross_site(req) {
            None => Ok(()),
            Some(reason) => {
                tracing::info!(
                    target: "session_audit",
                    event = "csrf",
                    method = %log_safe(method),
                    path = %log_safe(path),
                    reason,
                    "cross-site request refused"
                );
                Err(Rejection::CrossSite { reason })
            }
        }
    }
}

/// A parsed origin: scheme, lower-case host, and port (the scheme's default when not written).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: Scheme,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// `scheme://host[:port]` and nothing else; `None` for `null`, paths, user info or garbage.
    fn parse(text: &str) -> Option<Self> {
        let uri: Uri = text.parse().ok()?;
        let scheme = uri.scheme()?.clone();
        let authority = uri.authority()?;
        // An origin has no user info and no path; `Uri` would accept both.
        if authority.as_str().contains('@')
            || text.len() != scheme.as_str().len() + 3 + authority.as_str().len()
        {
            return None;
        }
        Some(Self::new(scheme, authority))
    }

    fn new(scheme: Scheme, authority: &Authority) -> Self {
        let port = authority.port_u16().or_else(|| default_port(&scheme));
        Self {
            scheme,
            host: authority.host().to_ascii_lowercase(),
            port,
        }
    }
}

fn default_port(scheme: &Scheme) -> Option<u16> {
    if *scheme == Scheme::HTTPS {
        Some(443)
    } else if *scheme == Scheme::HTTP {
        Some(80)
    } else {
        None
    }
}

/// `localhost`, `*.localhost`, `127.0.0.0/8` and `[::1]`: only this machine serves pages there.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl CsrfPolicy {
    /// Why the request is cross-site, or `None` when it may pass.
    fn cross_site<'a, O>(&self, req: CsrfRequest<'a, O>) -> Option<&'static str>
    where
        O: Iterator<Item = &'a [u8]>,
    {
        if !Self::guards(req.method) {
            return None;
        }
        let mut origins = req.origins;
        let origin = origins.next();
        if origins.next().is_some() {
            return Some("more than one Origin header");
        }
        let origin = origin.map(|o| std::str::from_utf8(o).ok().and_then(Origin::parse));
        if let (Some(Some(origin)), Some(allowed)) = (&origin, &self.allowed) {
            if allowed.contains(origin) {
                return None;
            }
        }
        if req
            .sec_fetch_site
            .is_some_and(|v| v.eq_ignore_ascii_case(b"cross-site"))
        {
            return Some("Sec-Fetch-Site: cross-site");
        }
        let Some(origin) = origin? else {
            return Some("Origin is not a usable origin");
        };
        if self.allowed.is_some() {
            return Some("Origin is not an allowed origin");
        }
        let host = match req.host {
            Some(h) => std::str::from_utf8(h)
                .ok()
                .and_then(|h| h.parse::<Authority>().ok()),
            None => req.uri_authority.and_then(|a| a.parse::<Authority>().ok()),
        };
        let Some(host) = host else {
            return Some("Origin names another origin than Host");
        };
        if origin == Origin::new(self.site_scheme.clone(), &host) {
            return None;
        }
        let own_http = Origin::new(Scheme::HTTP, &host);
        if is_loopback(&own_http.host) && origin == own_http {
            return None;
        }
        Some("Origin names another origin than the site's (scheme, host and port)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn check_with(
        layer: &CsrfPolicy,
        method: Method,
        pairs: &[(&str, &str)],
    ) -> Option<&'static str> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_bytes())
        };
        layer.cross_site(CsrfRequest {
            method: method.as_str(),
            origins: pairs
                .iter()
                .filter(|(k, _)| *k == "origin")
                .map(|(_, v)| v.as_bytes()),
            sec_fetch_site: get("sec-fetch-site"),
            host: get("host"),
            uri_authority: None,
            path: "/x",
        })
    }

    fn check(method: Method, pairs: &[(&str, &str)]) -> Option<&'static str> {
        check_with(&CsrfPolicy::default(), method, pairs)
    }

    fn http_site() -> CsrfPolicy {
        CsrfPolicy::default().with_site_scheme(Scheme::HTTP)
    }

    #[test]
    fn same_origin_and_headerless_requests_pass() {
        assert_eq!(check(Method::POST, &[]), None);
        assert_eq!(check(Method::POST, &[("host", "app.example:3000")]), None);
        assert_eq!(
            check_with(
                &http_site(),
                Method::POST,
                &[
                    ("host", "app.example:3000"),
                    ("origin", "http://app.example:3000")
                ]
            ),
            None
        );
        assert_eq!(
            check(
                Method::DELETE,
                &[
                    ("host", "App.Example"),
                    ("origin", "https://app.example:443")
                ]
            ),
            None
        );
        assert_eq!(
            check(
                Method::PUT,
                &[("host", "a"), ("sec-fetch-site", "same-origin")]
            ),
            None
        );
    }

    #[test]
    fn cross_site_writes_are_refused_and_reads_pass() {
        let evil = [("host", "app.example"), ("origin", "https://evil.example")];
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(check(m, &evil).is_some());
        }
        assert_eq!(check(Method::GET, &evil), None);
        assert!(check(Method::POST, &[("host", "a"), ("origin", "null")]).is_some());
        assert!(check_with(
            &http_site(),
            Method::POST,
            &[
                ("host", "app.example:3000"),
                ("origin", "http://app.example:4000")
            ]
        )
        .is_some());
        assert!(check(Method::PATCH, &[("sec-fetch-site", "cross-site")]).is_some());
        assert!(check(Method::POST, &[("origin", "http://app.example")]).is_some());
        let twice = [
            ("host", "app.example"),
            ("origin", "https://app.example"),
            ("origin", "https://app.example"),
        ];
        assert!(check(Method::POST, &twice).is_some());
    }

    #[test]
    fn an_origin_of_another_scheme_is_refused() {
        // The default layer takes the site for https: a page on http://app.example (say, one a
        // network attacker injected) must not write to https://app.example.
        for (host, origin) in [
            ("app.example", "http://app.example"),
            ("app.example:443", "http://app.example:443"),
            ("app.example:8443", "http://app.example:8443"),
            ("app.example:80", "http://app.example"),
        ] {
            assert!(
                check(Method::POST, &[("host", host), ("origin", origin)]).is_some(),
                "{origin} passed on https://{host}"
            );
        }
        assert_eq!(
            check(
                Method::POST,
                &[("host", "app.example"), ("origin", "https://app.example")]
            ),
            None
        );
        // And the other way round on a site served over http.
        for (host, origin) in [
            ("app.example:3000", "https://app.example:3000"),
            ("app.example", "https://app.example:80"),
        ] {
            assert!(
                check_with(
                    &http_site(),
                    Method::POST,
                    &[("host", host), ("origin", origin)]
                )
                .is_some(),
                "{origin} passed on http://{host}"
            );
        }
    }

    #[test]
    fn loopback_hosts_accept_their_http_origin_too() {
        for (host, origin) in [
            ("localhost:3000", "http://localhost:3000"),
            ("127.0.0.1:3000", "http://127.0.0.1:3000"),
            ("[::1]:3000", "http://[::1]:3000"),
            ("app.localhost", "http://app.localhost"),
            ("localhost:3000", "https://localhost:3000"),
        ] {
            assert_eq!(
                check(Method::POST, &[("host", host), ("origin", origin)]),
                None,
                "{origin} on {host}"
            );
        }
        assert!(check(
            Method::POST,
            &[
                ("host", "localhost:3000"),
                ("origin", "http://localhost:3001")
            ]
        )
        .is_some());
        assert!(check(
            Method::POST,
            &[
                ("host", "localhost.example"),
                ("origin", "http://localhost.example")
            ]
        )
        .is_some());
    }

    #[test]
    fn allowed_origins_are_exactly_the_ones_that_pass() {
        let layer = CsrfPolicy::default()
            .with_allowed_origins(["https://app.example", " https://Admin.example:8443 "])
            .unwrap();
        for origin in [
            "https://app.example",
            "https://app.example:443",
            "https://admin.example:8443",
        ] {
            // The Host header plays no part.
            for host in ["app.example", "internal:3000"] {
                assert_eq!(
                    check_with(&layer, Method::POST, &[("host", host), ("origin", origin)]),
                    None,
                    "{origin}"
                );
            }
        }
        // A listed origin passes even where the browser calls it cross-site.
        assert_eq!(
            check_with(
                &layer,
                Method::POST,
                &[
                    ("origin", "https://app.example"),
                    ("sec-fetch-site", "cross-site")
                ]
            ),
            None
        );
        for origin in [
            "http://app.example",
            "https://app.example:8443",
            "https://admin.example",
            "https://app.example.evil",
            "https://evil.example",
            "null",
        ] {
            assert!(
                check_with(
                    &layer,
                    Method::POST,
                    &[("host", "app.example"), ("origin", origin)]
                )
                .is_some(),
                "{origin} passed"
            );
        }
        assert!(check_with(&layer, Method::POST, &[("sec-fetch-site", "cross-site")]).is_some());
        assert_eq!(check_with(&layer, Method::POST, &[]), None);
    }

    #[test]
    fn allowed_origins_must_be_bare_http_or_https_origins() {
        for bad in [
            "app.example",
            "https://app.example/",
            "https://app.example/path",
            "https://app.example?q",
            "https://user@app.example",
            "ftp://app.example",
            "null",
            "",
        ] {
            assert!(
                CsrfPolicy::default().with_allowed_origins([bad]).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(CsrfPolicy::default()
            .with_allowed_origins(Vec::<String>::new())
            .is_err());
    }
}
