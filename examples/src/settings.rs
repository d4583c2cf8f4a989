//! The demo's settings, from environment variables (all optional).

use std::net::SocketAddr;
use std::time::Duration;

use session_core::web::CsrfPolicy;
use session_core::RedisTarget;

use crate::serve::ReadTimeouts;

/// Everything the demo can be told at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DEMO_ADDR`: where to listen.
    pub addr: SocketAddr,
    /// Where sessions and accounts live: `REDIS_URL` (one server), `REDIS_CLUSTER_NODES`
    /// (a Redis Cluster) or `REDIS_SENTINELS` + `REDIS_SENTINEL_SERVICE` (Sentinel); none of
    /// them: in memory.
    pub redis: Option<RedisTarget>,
    /// `SESSION_IDLE_SECS`.
    pub idle: Duration,
    /// `SESSION_ABSOLUTE_SECS`.
    pub absolute: Duration,
    /// `SESSION_REMEMBER_IDLE_SECS`: the idle timeout of a login that asked to be remembered.
    pub remember_idle: Duration,
    /// `SESSION_REMEMBER_ABSOLUTE_SECS`: the absolute lifetime of a remembered login.
    pub remember_absolute: Duration,
    /// `IMPERSONATION_SECS`: the absolute lifetime of an impersonation session.
    pub impersonation: Duration,
    /// `SESSION_MAX_PER_USER`.
    pub max_per_user: usize,
    /// `HISTORY_MAX`: entries kept in each user's login history.
    pub history_max: usize,
    /// `COOKIE_SECURE`.
    pub cookie_secure: bool,
    /// `LOGIN_MAX_FAILURES`.
    pub login_max_failures: u32,
    /// `LOGIN_LOCKOUT_SECS`.
    pub lockout: Duration,
    /// `HTTP_HEADER_TIMEOUT_SECS`: a connection that has not sent a complete request head this
    /// long after connecting (or after its previous answer) is closed.
    pub header_timeout: Duration,
    /// `HTTP_BODY_TIMEOUT_SECS`: a request whose body has not arrived whole this long after
    /// its head is answered 408 and its connection closed.
    pub body_timeout: Duration,
    /// `LOGIN_QUEUE_MAX`: password checks allowed to wait at once.
    pub login_queue_max: usize,
    /// `LOGIN_QUEUE_PER_CLIENT`: of those, how many one client (an IPv4 address, an IPv6 /64)
    /// may hold; by default an eighth of `LOGIN_QUEUE_MAX` (at least 1).
    pub login_queue_per_client: usize,
    /// `STEP_UP_SECS`: how long after the password was entered (login, `POST /reauth`) a
    /// session counts as freshly authenticated (`PUT /password`, `DELETE /sessions/others`).
    pub step_up: Duration,
    /// `ALLOWED_ORIGINS`: the exact origins (`https://app.example`, comma-separated) allowed
    /// to send POST/PUT/PATCH/DELETE; unset: the request's own origin, `https://{Host}` (or
    /// `http://{Host}` with `COOKIE_SECURE=false`).
    pub allowed_origins: Option<Vec<String>>,
    /// `SESSION_CACHE` (`on`, the default, or `off`): serve hot sessions from this server's
    /// memory, kept true by Redis's invalidations (`RedisStore::with_cache`: one server,
    /// Sentinel or Cluster).
    pub session_cache: bool,
    /// `DBSC` (`true`/`false`, default false): offer Device Bound Session Credentials at login;
    /// `DBSC_COOKIE_SECS` (default 600): how long a bound credential lasts. `None`: off.
    pub dbsc: Option<Duration>,
}

impl Settings {
    /// `HTTP_HEADER_TIMEOUT_SECS` and `HTTP_BODY_TIMEOUT_SECS`, for the server loop.
    pub fn read_timeouts(&self) -> ReadTimeouts {
        ReadTimeouts {
            head: self.header_timeout,
            body: self.body_timeout,
        }
    }

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
        let dbsc = match get("DBSC").as_deref().map(str::trim) {
            None | Some("false") | Some("0") => None,
            Some("true") | Some("1") => Some(secs("DBSC_COOKIE_SECS", 600)?),
            Some(v) => return Err(format!("DBSC={v:?}: expected true or false")),
        };
        let session_cache = match get("SESSION_CACHE").as_deref().map(str::trim) {
            None | Some("on") | Some("true") | Some("1") => true,
            Some("off") | Some("false") | Some("0") => false,
            Some(v) => return Err(format!("SESSION_CACHE={v:?}: expected on or off")),
        };
        let max_failures = number("LOGIN_MAX_FAILURES", 5)?;
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.contains("://") {
                        s.to_owned()
                    } else {
                        format!("redis://{s}")
                    }
                })
                .collect()
        };
        let redis = match (
            get("REDIS_URL"),
            get("REDIS_CLUSTER_NODES"),
            get("REDIS_SENTINELS"),
        ) {
            (None, None, None) => None,
            (Some(url), None, None) => Some(RedisTarget::Single(url)),
            (None, Some(nodes), None) => Some(RedisTarget::Cluster(list(nodes))),
            (None, None, Some(sentinels)) => Some(RedisTarget::Sentinel {
                sentinels: list(sentinels),
                service: get("REDIS_SENTINEL_SERVICE").ok_or(
                    "REDIS_SENTINELS is set but REDIS_SENTINEL_SERVICE (the monitored primary's \
                     name) is not",
                )?,
            }),
            _ => {
                return Err(
                    "set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS".to_owned(),
                )
            }
        };
        let login_queue_max = usize::try_from(number("LOGIN_QUEUE_MAX", 64)?)
            .map_err(|_| "LOGIN_QUEUE_MAX is too large".to_owned())?;
        let allowed_origins = match get("ALLOWED_ORIGINS") {
            None => None,
            Some(v) => {
                let origins: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                // Checked now, so a typo stops the server at start rather than refusing writes.
                CsrfPolicy::default()
                    .with_allowed_origins(&origins)
                    .map_err(|e| format!("ALLOWED_ORIGINS={v:?}: {e}"))?;
                Some(origins)
            }
        };
        Ok(Self {
            addr,
            redis,
            idle: secs("SESSION_IDLE_SECS", 1800)?,
            absolute: secs("SESSION_ABSOLUTE_SECS", 43200)?,
            remember_idle: secs("SESSION_REMEMBER_IDLE_SECS", 14 * 24 * 3600)?,
            remember_absolute: secs("SESSION_REMEMBER_ABSOLUTE_SECS", 30 * 24 * 3600)?,
            impersonation: secs("IMPERSONATION_SECS", 900)?,
            max_per_user: usize::try_from(number("SESSION_MAX_PER_USER", 10)?)
                .map_err(|_| "SESSION_MAX_PER_USER is too large".to_owned())?,
            history_max: usize::try_from(number("HISTORY_MAX", 100)?)
                .map_err(|_| "HISTORY_MAX is too large".to_owned())?,
            cookie_secure,
            login_max_failures: u32::try_from(max_failures)
                .map_err(|_| "LOGIN_MAX_FAILURES is too large".to_owned())?,
            lockout: secs("LOGIN_LOCKOUT_SECS", 900)?,
            header_timeout: secs("HTTP_HEADER_TIMEOUT_SECS", 30)?,
            body_timeout: secs("HTTP_BODY_TIMEOUT_SECS", 30)?,
            login_queue_max,
            login_queue_per_client: usize::try_from(number(
                "LOGIN_QUEUE_PER_CLIENT",
                login_queue_max.div_ceil(8) as u64,
            )?)
            .map_err(|_| "LOGIN_QUEUE_PER_CLIENT is too large".to_owned())?,
            step_up: secs("STEP_UP_SECS", 300)?,
            allowed_origins,
            session_cache,
            dbsc,
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
        assert!(s.redis.is_none());
        assert_eq!(s.idle, Duration::from_secs(1800));
        assert_eq!(s.absolute, Duration::from_secs(43200));
        assert_eq!(s.remember_idle, Duration::from_secs(1_209_600));
        assert_eq!(s.remember_absolute, Duration::from_secs(2_592_000));
        assert_eq!(s.impersonation, Duration::from_secs(900));
        assert_eq!(s.max_per_user, 10);
        assert!(s.cookie_secure);
        assert_eq!(s.login_max_failures, 5);
        assert_eq!(s.lockout, Duration::from_secs(900));
        assert_eq!(s.header_timeout, Duration::from_secs(30));
        assert_eq!(s.body_timeout, Duration::from_secs(30));
        assert_eq!(s.login_queue_max, 64);
        assert_eq!(s.login_queue_per_client, 8);
        assert_eq!(s.step_up, Duration::from_secs(300));
        assert_eq!(s.allowed_origins, None);
        assert!(s.session_cache);
        assert!(!parse(&[("SESSION_CACHE", "off")]).unwrap().session_cache);
        assert!(parse(&[("SESSION_CACHE", "maybe")]).is_err());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("SESSION_IDLE_SECS", "-1"),
            ("SESSION_ABSOLUTE_SECS", "0"),
            ("COOKIE_SECURE", "maybe"),
            ("DBSC", "yes"),
            ("DEMO_ADDR", "nowhere"),
            ("LOGIN_MAX_FAILURES", "x"),
            ("LOGIN_QUEUE_MAX", "0"),
            ("STEP_UP_SECS", "0"),
            ("HTTP_HEADER_TIMEOUT_SECS", "0"),
            ("HTTP_BODY_TIMEOUT_SECS", "0"),
            ("HTTP_BODY_TIMEOUT_SECS", "soon"),
            ("ALLOWED_ORIGINS", "app.example"),
            ("ALLOWED_ORIGINS", "https://app.example/path"),
            (
                "ALLOWED_ORIGINS",
                "https://app.example, ftp://files.example",
            ),
            ("ALLOWED_ORIGINS", " , "),
        ] {
            let err = parse(&[(k, v)]).unwrap_err();
            assert!(err.contains(k), "{err}");
        }
        assert!(!parse(&[("COOKIE_SECURE", "false")]).unwrap().cookie_secure);
        assert!(parse(&[("REDIS_URL", "redis://a"), ("REDIS_SENTINELS", "b:1")]).is_err());
        assert!(parse(&[("REDIS_SENTINELS", "b:1")])
            .unwrap_err()
            .contains("SERVICE"));
    }

    #[test]
    fn allowed_origins_are_a_trimmed_comma_separated_list() {
        let s = parse(&[(
            "ALLOWED_ORIGINS",
            " https://app.example, https://admin.example:8443 ,",
        )])
        .unwrap();
        assert_eq!(
            s.allowed_origins.unwrap(),
            ["https://app.example", "https://admin.example:8443"]
        );
    }

    /// The settings are `Debug` (and may be logged): no Redis password shows, whichever
    /// variable holds it.
    #[test]
    fn debug_of_the_settings_hides_redis_passwords() {
        for env in [
            &[("REDIS_URL", "redis://:hunter2@db:6379/0")][..],
            &[("REDIS_URL", "redis://db:6379/?password=hunter2")],
            &[(
                "REDIS_CLUSTER_NODES",
                ":hunter2@n1:7000,redis://app:hunter2@n2:7000",
            )],
            &[
                ("REDIS_SENTINELS", ":hunter2@s1:26379"),
                ("REDIS_SENTINEL_SERVICE", "sessions"),
            ],
        ] {
            let shown = format!("{:?}", parse(env).unwrap());
            assert!(
                !shown.contains("hunter2") && shown.contains("***"),
                "{shown}"
            );
        }
    }

    #[test]
    fn redis_topologies_from_the_environment() {
        let single = parse(&[("REDIS_URL", "redis://127.0.0.1:6379")]).unwrap();
        assert_eq!(
            single.redis,
            Some(RedisTarget::Single("redis://127.0.0.1:6379".into()))
        );
        let cluster = parse(&[(
            "REDIS_CLUSTER_NODES",
            "10.0.0.1:7000, redis://10.0.0.2:7000",
        )]);
        assert_eq!(
            cluster.unwrap().redis,
            Some(RedisTarget::Cluster(vec![
                "redis://10.0.0.1:7000".into(),
                "redis://10.0.0.2:7000".into()
            ]))
        );
        let sentinel = parse(&[
            ("REDIS_SENTINELS", "s1:26379,s2:26379"),
            ("REDIS_SENTINEL_SERVICE", "sessions"),
        ]);
        assert_eq!(
            sentinel.unwrap().redis,
            Some(RedisTarget::Sentinel {
                sentinels: vec!["redis://s1:26379".into(), "redis://s2:26379".into()],
                service: "sessions".into()
            })
        );
    }
}
