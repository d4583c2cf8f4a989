//! The demo's settings, from environment variables (all optional).

use std::net::SocketAddr;
use std::time::Duration;

/// Everything the demo can be told at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DEMO_ADDR`: where to listen.
    pub addr: SocketAddr,
    /// `REDIS_URL`: sessions and accounts in Redis; unset: in memory.
    pub redis_url: Option<String>,
    /// `SESSION_IDLE_SECS`.
    pub idle: Duration,
    /// `SESSION_ABSOLUTE_SECS`.
    pub absolute: Duration,
    /// `SESSION_MAX_PER_USER`.
    pub max_per_user: usize,
    /// `COOKIE_SECURE`.
    pub cookie_secure: bool,
    /// `LOGIN_MAX_FAILURES`.
    pub login_max_failures: u32,
    /// `LOGIN_LOCKOUT_SECS`.
    pub lockout: Duration,
}

impl Settings {
    /// Reads the settings from the process environment.
    ///
    /// # Errors
    /// A message naming the variable that could not be understood.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    ///
    /// # Errors
    /// A message naming the variable that could not be understood.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let secs = |name: &str, default: u64| -> Result<Duration, String> {
            match get(name) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
                    _ => Err(format!(
                        "{name}={v:?}: expected a whole number of seconds > 0"
                    )),
                },
            }
        };
        let number = |name: &str, default: u64| -> Result<u64, String> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(format!("{name}={v:?}: expected a whole number > 0")),
                },
            }
        };
        let addr = match get("DEMO_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("DEMO_ADDR={v:?}: expected host:port, e.g. 127.0.0.1:3000"))?,
        };
        let cookie_secure = match get("COOKIE_SECURE").as_deref().map(str::trim) {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(v) => return Err(format!("COOKIE_SECURE={v:?}: expected true or false")),
        };
        let max_failures = number("LOGIN_MAX_FAILURES", 5)?;
        Ok(Self {
            addr,
            redis_url: get("REDIS_URL"),
            idle: secs("SESSION_IDLE_SECS", 1800)?,
            absolute: secs("SESSION_ABSOLUTE_SECS", 43200)?,
            max_per_user: usize::try_from(number("SESSION_MAX_PER_USER", 10)?)
                .map_err(|_| "SESSION_MAX_PER_USER is too large".to_owned())?,
            cookie_secure,
            login_max_failures: u32::try_from(max_failures)
                .map_err(|_| "LOGIN_MAX_FAILURES is too large".to_owned())?,
            lockout: secs("LOGIN_LOCKOUT_SECS", 900)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:3000");
        assert!(s.redis_url.is_none());
        assert_eq!(s.idle, Duration::from_secs(1800));
        assert_eq!(s.absolute, Duration::from_secs(43200));
        assert_eq!(s.max_per_user, 10);
        assert!(s.cookie_secure);
        assert_eq!(s.login_max_failures, 5);
        assert_eq!(s.lockout, Duration::from_secs(900));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("SESSION_IDLE_SECS", "-1"),
            ("SESSION_ABSOLUTE_SECS", "0"),
            ("COOKIE_SECURE", "maybe"),
            ("DEMO_ADDR", "nowhere"),
            ("LOGIN_MAX_FAILURES", "x"),
        ] {
            let err = parse(&[(k, v)]).unwrap_err();
            assert!(err.contains(k), "{err}");
        }
        assert!(!parse(&[("COOKIE_SECURE", "false")]).unwrap().cookie_secure);
    }
}
