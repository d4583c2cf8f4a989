//! A user's login history: an append-only trail of login attempts and session ends, bounded by
//! count and age ([`SessionConfigBuilder::history_max`](crate::SessionConfigBuilder::history_max)),
//! kept by the store next to the user's sessions.
//!
//! The request core records what it does ([`AuthSession::login`](crate::web::AuthSession::login),
//! `logout`, `end_session`, `end_other_sessions`, `reauthenticate`), the store records the
//! sessions the per-user limit evicts, and the application records what only it knows (a wrong
//! password, a lockout, a password change) with [`SessionStore::record_event`](crate::SessionStore::record_event).
//! An entry holds the event, its time and the device (browser and system read from the
//! `User-Agent`, the network): never a token, a password, a whole address or the `User-Agent`
//! itself.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::Serialize;

use crate::device::{browser_and_os, Device, Network};
use crate::error::{Error, Result};
use crate::record::{rfc3339, system_time_ms, to_system_time};

/// What happened, as a login history lists it (serialized in `snake_case`: `"login_failed"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LoginEvent {
    /// A login succeeded (recorded by [`AuthSession::login`](crate::web::AuthSession::login)).
    Login,
    /// A wrong password for an existing user (the application records it).
    LoginFailed,
    /// A login refused because the username is locked (the application records it).
    Locked,
    /// A session's own logout.
    Logout,
    /// Sessions ended by their user or an admin: one entry per request, however many ended.
    Revoked,
    /// A session ended by the per-user limit (recorded by the store, one entry per session).
    Evicted,
    /// The user's password changed (the application records it).
    PasswordChanged,
    /// The user entered the password again in a session (step-up).
    Reauth,
    /// A wrong password at re-authentication (the application records it).
    ReauthFailed,
    /// An admin began impersonating the user, or the user (an admin) began impersonating.
    ImpersonationStarted,
    /// An impersonation ended.
    ImpersonationEnded,
}

impl LoginEvent {
    const ALL: [Self; 11] = [
        Self::Login,
        Self::LoginFailed,
        Self::Locked,
        Self::Logout,
        Self::Revoked,
        Self::Evicted,
        Self::PasswordChanged,
        Self::Reauth,
        Self::ReauthFailed,
        Self::ImpersonationStarted,
        Self::ImpersonationEnded,
    ];

    fn code(self) -> u8 {
        Self::ALL.iter().position(|e| *e == self).unwrap_or(0) as u8
    }

    fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }
}

/// One entry of a user's login history: when, what, and from which device.
///
/// Build one with [`HistoryEntry::new`] to record it
/// ([`SessionStore::record_event`](crate::SessionStore::record_event)); the store sets its time.
/// It serializes with its time in RFC 3339:
///
/// ```
/// use session_core::{HistoryEntry, LoginEvent, MemoryStore, SessionConfig, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new(SessionConfig::default());
/// let failed = HistoryEntry::new(LoginEvent::LoginFailed)
///     .with_user_agent("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
///     .with_client_ip("203.0.113.7".parse()?);
/// store.record_event("alice", failed).await?;
/// let history = store.login_history("alice").await?;
/// let json = serde_json::to_value(&history[0])?;
/// assert_eq!(json["event"], "login_failed");
/// assert_eq!(json["browser"], "Firefox");
/// assert_eq!(json["network"], "203.0.113.0/24");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// When it happened (by the store's clock when it was recorded).
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    /// What happened.
    pub event: LoginEvent,
    /// The browser read from the request's `User-Agent`, if recognised.
    pub browser: Option<String>,
    /// The operating system read from it, if recognised.
    pub os: Option<String>,
    /// The client's network (`203.0.113.0/24`, `2001:db8:1::/48`), never the whole address.
    pub network: Option<String>,
}

/// Longest browser, system or network name kept in an entry, in bytes.
const MAX_FIELD: usize = 64;

impl HistoryEntry {
    /// An entry for `event`, with no device known yet.
    pub fn new(event: LoginEvent) -> Self {
        Self {
            at: SystemTime::UNIX_EPOCH,
            event,
            browser: None,
            os: None,
            network: None,
        }
    }

    /// The browser and system of the request's `User-Agent` (the `User-Agent` itself is not
    /// kept).
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: &str) -> Self {
        (self.browser, self.os) = browser_and_os(user_agent);
        self
    }

    /// The client's network (an IPv4 address's /24, an IPv6 address's /48; not the address).
    #[must_use]
    pub fn with_client_ip(mut self, ip: IpAddr) -> Self {
        self.network = Some(Network::of(ip).to_string());
        self
    }

    /// The entry of `event` for a session's device.
    pub(crate) fn of_device(event: LoginEvent, device: &Device) -> Self {
        let (browser, os) = device.browser_and_os();
        Self {
            at: SystemTime::UNIX_EPOCH,
            event,
            browser,
            os,
            network: device.network.map(|n| n.to_string()),
        }
    }

    /// True for a successful login from the same device (browser, system and network) as
    /// `other`.
    pub(crate) fn same_device(&self, other: &Self) -> bool {
        (&self.browser, &self.os, &self.network) == (&other.browser, &other.os, &other.network)
    }

    /// Whether a login from `device` is from a new device for a user with `history` (newest
    /// first): the user has an earlier successful login, and none from this device. A user's
    /// first login is not new.
    pub(crate) fn is_new_device(history: &[Self], device: &Self) -> bool {
        let mut logins = history
            .iter()
            .filter(|e| e.event == LoginEvent::Login)
            .peekable();
        logins.peek().is_some() && !logins.any(|e| e.same_device(device))
    }

    /// The entry's bytes at rest, its time set to `at_ms`: event, time (6 bytes), then browser,
    /// system and network, each a length byte and UTF-8.
    pub(crate) fn encode(&self, at_ms: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(10 + 3 * 16);
        out.push(self.event.code());
        out.extend_from_slice(&at_ms.to_be_bytes()[2..]);
        for field in [&self.browser, &self.os, &self.network] {
            let text = field.as_deref().unwrap_or("");
            let mut end = text.len().min(MAX_FIELD);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            out.push(end as u8);
            out.extend_from_slice(&text.as_bytes()[..end]);
        }
        out
    }

    /// Reads what [`HistoryEntry::encode`] wrote; `Corrupt` for anything else.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = || Error::Corrupt(format!("a login history entry ({} bytes)", bytes.len()));
        let (&code, rest) = bytes.split_first().ok_or_else(corrupt)?;
        let event = LoginEvent::from_code(code).ok_or_else(corrupt)?;
        let (at, mut rest) = rest.split_first_chunk::<6>().ok_or_else(corrupt)?;
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(at);
        let mut fields = [None, None, None];
        for field in &mut fields {
            let (&len, tail) = rest.split_first().ok_or_else(corrupt)?;
            let (text, tail) = tail
                .split_at_checked(usize::from(len))
                .ok_or_else(corrupt)?;
            let text = std::str::from_utf8(text).map_err(|_| corrupt())?;
            *field = (!text.is_empty()).then(|| text.to_owned());
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(corrupt());
        }
        let [browser, os, network] = fields;
        Ok(Self {
            at: to_system_time(u64::from_be_bytes(ms)),
            event,
            browser,
            os,
            network,
        })
    }

    /// The time in ms.
    #[cfg_attr(not(any(feature = "redis", feature = "test-suite")), allow(dead_code))]
    pub(crate) fn at_ms(&self) -> u64 {
        system_time_ms(self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_written() {
        let entry = HistoryEntry::new(LoginEvent::ImpersonationEnded)
            .with_user_agent(
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            )
            .with_client_ip("2001:db8::1".parse().unwrap());
        let bytes = entry.encode(1_800_000_000_123);
        let back = HistoryEntry::decode(&bytes).unwrap();
        assert_eq!(back.at_ms(), 1_800_000_000_123);
        assert_eq!(
            HistoryEntry {
                at: entry.at,
                ..back
            },
            entry
        );
        for cut in 0..bytes.len() {
            assert!(HistoryEntry::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(HistoryEntry::decode(&[bytes.as_slice(), &[0]].concat()).is_err());
        assert!(HistoryEntry::decode(&[99, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        for event in LoginEvent::ALL {
            assert_eq!(LoginEvent::from_code(event.code()), Some(event));
        }
    }

    #[test]
    fn a_device_is_new_only_after_a_first_login_and_never_seen_before() {
        let at = |ua: &str, ip: &str| {
            HistoryEntry::new(LoginEvent::Login)
                .with_user_agent(ua)
                .with_client_ip(ip.parse().unwrap())
        };
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let home = at(firefox, "198.51.100.7");
        assert!(!HistoryEntry::is_new_device(&[], &home), "a first login");
        let failed = HistoryEntry {
            event: LoginEvent::LoginFailed,
            ..at(firefox, "203.0.113.1")
        };
        assert!(
            !HistoryEntry::is_new_device(std::slice::from_ref(&failed), &home),
            "no login yet"
        );
        let history = [failed, home.clone()];
        assert!(!HistoryEntry::is_new_device(
            &history,
            &at(firefox, "198.51.100.200")
        ));
        assert!(HistoryEntry::is_new_device(
            &history,
            &at(firefox, "203.0.113.1")
        ));
        assert!(HistoryEntry::is_new_device(
            &history,
            &at("curl/8", "198.51.100.7")
        ));
    }
}
