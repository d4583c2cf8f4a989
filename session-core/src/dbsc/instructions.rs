//! The JSON session instructions a registration (and optionally a refresh) answers with: which
//! session this is, where to refresh it, which URLs it covers and which cookies it guards. Field
//! names are the spec's, exactly.

use serde::{Deserialize, Serialize};

/// The body of a registration or refresh answer (`application/json`): the spec's "JSON session
/// instructions".
///
/// Built with [`new`](Self::new) (a live session) or [`terminate`](Self::terminate) (`continue:
/// false`, which ends the session in the browser); read back with serde (a test client does).
///
/// ```
/// use session_core::dbsc::{Credential, Scope, ScopeRule, SessionInstructions};
///
/// let instructions = SessionInstructions::new(
///     "session 1",
///     Scope::origin("https://example.com").with_rule(ScopeRule::exclude("/static")),
///     vec![Credential::cookie("bound", "Path=/; Secure; HttpOnly; SameSite=Lax")],
/// )
/// .with_refresh_url("/dbsc/refresh");
/// assert_eq!(
///     serde_json::to_value(&instructions).unwrap(),
///     serde_json::json!({
///         "session_identifier": "session 1",
///         "refresh_url": "/dbsc/refresh",
///         "scope": {
///             "origin": "https://example.com",
///             "include_site": false,
///             "scope_specification": [{"type": "exclude", "path": "/static"}]
///         },
///         "credentials": [{
///             "type": "cookie",
///             "name": "bound",
///             "attributes": "Path=/; Secure; HttpOnly; SameSite=Lax"
///         }]
///     })
/// );
/// assert_eq!(
///     serde_json::to_string(&SessionInstructions::terminate()).unwrap(),
///     r#"{"continue":false}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionInstructions {
    /// The session's identifier, unique within the site; the browser sends it back in
    /// `Sec-Secure-Session-Id`. Required unless `continue` is false; on a refresh, the current
    /// session's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_identifier: Option<String>,
    /// Where the browser refreshes the session (absolute, or relative to the answered URL);
    /// absent, the answered URL itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_url: Option<String>,
    /// `false` ends the session in the browser; absent means `true`.
    #[serde(rename = "continue", default = "yes", skip_serializing_if = "is_true")]
    pub continue_: bool,
    /// The URLs the session covers. Required unless `continue` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The cookies the session guards. Required unless `continue` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Vec<Credential>>,
    /// Hosts (or `*.`-patterns) outside the scope allowed to set off a refresh; absent, none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_refresh_initiators: Vec<String>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl SessionInstructions {
    /// Instructions for a live session: its identifier, scope and guarded cookies.
    pub fn new(
        session_identifier: impl Into<String>,
        scope: Scope,
        credentials: Vec<Credential>,
    ) -> Self {
        Self {
            session_identifier: Some(session_identifier.into()),
            refresh_url: None,
            continue_: true,
            scope: Some(scope),
            credentials: Some(credentials),
            allowed_refresh_initiators: Vec::new(),
        }
    }

    /// `{"continue": false}`: the browser ends the session (say, after a logout).
    pub fn terminate() -> Self {
        Self {
            session_identifier: None,
            refresh_url: None,
            continue_: false,
            scope: None,
            credentials: None,
            allowed_refresh_initiators: Vec::new(),
        }
    }

    /// Sets where the browser refreshes the session (default: the URL that answered).
    pub fn with_refresh_url(mut self, refresh_url: impl Into<String>) -> Self {
        self.refresh_url = Some(refresh_url.into());
        self
    }

    /// Lets these out-of-scope hosts (`example.com`, `*.example.com`) set off refreshes.
    ///
    /// Each one widens a timing side channel: a page there can tell, by how long a request
    /// takes, whether the user is signed in here. Name only sites you trust with that.
    pub fn with_allowed_refresh_initiators(
        mut self,
        hosts: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_refresh_initiators = hosts.into_iter().map(Into::into).collect();
        self
    }
}

/// Which URLs a session covers: an origin (or its whole site), less or plus the rules in
/// `scope_specification`, the last matching rule deciding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Scope {
    /// The origin (`https://example.com`); absent, the answered URL's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// `true`: the whole site (the origin's host must be the registrable domain); `false`: the
    /// origin only. Always sent: the spec requires it.
    pub include_site: bool,
    /// Include and exclude rules, the last matching one deciding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope_specification: Vec<ScopeRule>,
}

impl Scope {
    /// The origin `origin` only (`include_site: false`).
    pub fn origin(origin: impl Into<String>) -> Self {
        Self {
            origin: Some(origin.into()),
            include_site: false,
            scope_specification: Vec::new(),
        }
    }

    /// The whole site of `origin` (`include_site: true`), whose host must then be the site's
    /// registrable domain (`https://example.com`, not `https://www.example.com`).
    pub fn site(origin: impl Into<String>) -> Self {
        Self {
            include_site: true,
            ..Self::origin(origin)
        }
    }

    /// The origin that answered (no `origin` sent), only.
    pub fn answering_origin() -> Self {
        Self {
            origin: None,
            include_site: false,
            scope_specification: Vec::new(),
        }
    }

    /// Adds a rule after the others (so it wins over them where both match).
    pub fn with_rule(mut self, rule: ScopeRule) -> Self {
        self.scope_specification.push(rule);
        self
    }
}

/// One include or exclude rule of a [`Scope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScopeRule {
    /// Include or exclude.
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    /// The host or domain pattern (`*.example.com`) it applies to; absent, any (`*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The path prefix it applies to; absent, all (`/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl ScopeRule {
    /// Excludes `path` (and what is below it) on every host of the scope.
    pub fn exclude(path: impl Into<String>) -> Self {
        Self {
            rule_type: RuleType::Exclude,
            domain: None,
            path: Some(path.into()),
        }
    }

    /// Includes `path` (and what is below it) on every host of the scope.
    pub fn include(path: impl Into<String>) -> Self {
        Self {
            rule_type: RuleType::Include,
            ..Self::exclude(path)
        }
    }

    /// Restricts the rule to `domain` (a host, or a `*.`-pattern).
    pub fn on_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }
}

/// Whether a [`ScopeRule`] includes or excludes what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleType {
    /// `"include"`.
    Include,
    /// `"exclude"`.
    Exclude,
}

/// A cookie the session guards: while it is missing (expired), a covered request waits for a
/// refresh that sets it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Credential {
    /// Always `"cookie"` (the only kind the spec has).
    #[serde(rename = "type")]
    pub credential_type: CredentialType,
    /// The cookie's name (non-empty).
    pub name: String,
    /// The cookie's attributes as in `Set-Cookie` (`Domain`, `Path`, `Secure`, `HttpOnly`,
    /// `SameSite` are matched; `Max-Age` and `Expires` are not). Never `Partitioned`.
    #[serde(default)]
    pub attributes: String,
}

impl Credential {
    /// The cookie `name` with these `Set-Cookie` attributes.
    pub fn cookie(name: impl Into<String>, attributes: impl Into<String>) -> Self {
        Self {
            credential_type: CredentialType::Cookie,
            name: name.into(),
            attributes: attributes.into(),
        }
    }
}

/// The kind of a [`Credential`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CredentialType {
    /// `"cookie"`.
    Cookie,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's own example (less its comments) reads and writes back the same.
    #[test]
    fn spec_example_round_trips() {
        let json = serde_json::json!({
            "session_identifier": "session_id",
            "refresh_url": "/RefreshEndpoint",
            "continue": false,
            "scope": {
                "origin": "https://example.com",
                "include_site": true,
                "scope_specification": [
                    {"type": "include", "domain": "trusted.example.com", "path": "/only_trusted_path"},
                    {"type": "exclude", "domain": "untrusted.example.com", "path": "/"},
                    {"type": "exclude", "domain": "*.example.com", "path": "/static"}
                ]
            },
            "credentials": [{
                "type": "cookie",
                "name": "auth_cookie",
                "attributes": "Domain=example.com; Path=/; Secure; HttpOnly; SameSite=None"
            }],
            "allowed_refresh_initiators": ["example.com", "*.example.com", "site-embedding-example.com"]
        });
        let read: SessionInstructions = serde_json::from_value(json.clone()).unwrap();
        assert!(!read.continue_);
        assert_eq!(
            read.scope.as_ref().unwrap().scope_specification[2],
            ScopeRule::exclude("/static").on_domain("*.example.com")
        );
        assert_eq!(serde_json::to_value(&read).unwrap(), json);

        let built = SessionInstructions::new(
            "session_id",
            Scope::site("https://example.com")
                .with_rule(
                    ScopeRule::include("/only_trusted_path").on_domain("trusted.example.com"),
                )
                .with_rule(ScopeRule::exclude("/").on_domain("untrusted.example.com"))
                .with_rule(ScopeRule::exclude("/static").on_domain("*.example.com")),
            vec![Credential::cookie(
                "auth_cookie",
                "Domain=example.com; Path=/; Secure; HttpOnly; SameSite=None",
            )],
        )
        .with_refresh_url("/RefreshEndpoint")
        .with_allowed_refresh_initiators([
            "example.com",
            "*.example.com",
            "site-embedding-example.com",
        ]);
        assert_eq!(
            SessionInstructions {
                continue_: false,
                ..built
            },
            read
        );
    }

    #[test]
    fn absent_continue_means_true_and_unknown_keys_are_ignored() {
        let read: SessionInstructions =
            serde_json::from_str(r#"{"session_identifier":"s","future_key":1}"#).unwrap();
        assert!(read.continue_);
        assert_eq!(
            serde_json::to_string(&Scope::answering_origin()).unwrap(),
            r#"{"include_site":false}"#
        );
        assert!(serde_json::from_str::<Credential>(r#"{"type":"token","name":"a"}"#).is_err());
    }
}
