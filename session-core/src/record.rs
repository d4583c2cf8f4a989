//! What a session holds ([`Session`], [`NewSession`], [`SessionData`]) and its compact binary
//! encoding at rest.
//!
//! # Encoding
//! One record is one byte string. The fixed header comes first so that the Redis scripts can
//! read the deadline and splice the roles without decoding the rest:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 1 | format version (`3`) |
//! | 1 | 6 | absolute deadline, ms since the Unix epoch, big-endian |
//! | 7 | 6 | last seen, ms (as of the last write; `RedisStore` reads the live figure off the TTL) |
//! | 13 | 6 | created, ms |
//! | 19 | 6 | auth time, ms: when the user last entered the password in this session |
//! | 25 | 1 | length `u` of the user id (1–255) |
//! | 26 | u | user id, UTF-8 |
//! | 26+u | 2 | length `l` of the device block, big-endian (0: nothing known) |
//! | 28+u | l | the device block (`device.rs`): remembered / new-device flags, the client's network, the authentication method, the login's `User-Agent` (at most 256 characters) |
//! | 28+u+l | 2 | length `a` of the authorization block, big-endian |
//! | 30+u+l | a | roles and permissions (postcard: two lists of strings) |
//! | 30+u+l+a | rest | application data: empty, or a JSON object |
//!
//! Everything before the authorization block is the *head*: the Redis scripts find the block at
//! `30 + u + l` (1-based: the length at `29 + u + l`). A session of user `alice` with role
//! `USER`, no device details and no data is 42 bytes. Records of versions 1 and 2 (before
//! auth time, before the device block) decode as corrupt, so they count as no session.
//!
//! # What a session costs in Redis (measured, `benches/RESULTS.md`)
//! - The session key (`{prefix}:s:` + 16 bytes) with a 39-byte record: **120 bytes** by
//!   `MEMORY USAGE` (a raw string of the same sizes costs the same: the record adds nothing).
//! - With its entry in the user's index and its share of the index key, from `INFO memory`
//!   growth over 100 000 sessions: **240 bytes per session** at 10 sessions per user, **378 bytes**
//!   at 1 session per user (then every session also pays a whole index key).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

#[cfg(test)]
use crate::device::MAX_LABEL_CHARS;
use crate::device::{bounded_label, Device, Network};
use crate::ended::EndReason;
use crate::epoch::LoginEpoch;
use crate::error::{Error, Result};
use crate::token::{SessionHandle, SessionKey};

/// Record format version written in the first byte.
pub(crate) const FORMAT_VERSION: u8 = 3;
/// The first byte of an ended session's marker ([`Record::ended`]), which a
/// [`Storage`](crate::Storage) keeps; never written to Redis, whose scripts see it as no record.
const ENDED_FORMAT: u8 = 0x80 | FORMAT_VERSION;
/// Offset of the format version (one byte). The offsets and widths here are the record
/// layout's one source: the Redis scripts get them as Lua constants
/// (`store/redis/scripts.rs`).
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
pub(crate) const VERSION_OFFSET: usize = 0;
/// Width of each of the four times (ms since the epoch, big-endian).
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
pub(crate) const TIME_BYTES: usize = 6;
/// Offset of the absolute deadline.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
pub(crate) const DEADLINE_OFFSET: usize = 1;
/// Offset of "last seen".
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
pub(crate) const LAST_SEEN_OFFSET: usize = 7;
/// Offset of the creation time.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
pub(crate) const CREATED_OFFSET: usize = 13;
/// Offset of the auth time.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
pub(crate) const AUTH_TIME_OFFSET: usize = 19;
/// Offset of the user id's length field, which ends the fixed header.
pub(crate) const USER_LEN_OFFSET: usize = 25;
/// Width of the user id's length field.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
pub(crate) const USER_LEN_BYTES: usize = 1;
/// Width of the device block's length field (big-endian), right after the user id.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
pub(crate) const DEVICE_LEN_BYTES: usize = 2;
/// Width of the authorization block's length field (big-endian), right after the device block.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
pub(crate) const AUTHZ_LEN_BYTES: usize = 2;
/// Longest user id, in bytes.
pub const MAX_USER_ID_LEN: usize = 255;
/// Largest encoded application data, in bytes. Sessions are read on every request; keep bulky
/// state elsewhere and put its id in the session. See also [`MAX_DATA_DEPTH`].
pub const MAX_DATA_LEN: usize = 64 * 1024;
/// Deepest nesting of arrays and objects in the application data, its own top-level object
/// counting as one level: a value stored under a key may nest 63 levels (`[[1]]` is 2).
///
/// Why: serde_json reads no JSON nested deeper than 127 levels, so deeper data could be written
/// but never loaded again, and a session whose record cannot be loaded has ended. Deeper
/// values are refused when they are set ([`SessionData::insert`],
/// [`DataChanges::set`](crate::DataChanges::set)) and when data is encoded, with
/// [`Error::InvalidInput`]; the margin below 127 leaves room for a reader that wraps the data
/// in something of its own.
pub const MAX_DATA_DEPTH: usize = 64;
/// Largest encoded roles-and-permissions block, in bytes.
const MAX_AUTHZ_LEN: usize = u16::MAX as usize;
/// Largest value the 6-byte timestamps hold.
const MAX_MS: u64 = (1 << 48) - 1;

/// Milliseconds since the Unix epoch, by this machine's clock. Only for time that is about the
/// network, not about sessions (the Redis cache's heartbeat trust): every session rule reads
/// [`SessionConfig::clock`](crate::SessionConfig::clock).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn now_ms() -> u64 {
    system_time_ms(SystemTime::now())
}

/// `time` in ms since the Unix epoch, clamped to what the 6-byte timestamps hold.
pub(crate) fn system_time_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(u128::from(MAX_MS)) as u64)
}

pub(crate) fn duration_ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(MAX_MS)) as u64
}

pub(crate) fn to_system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Application data kept in a session: a map from string keys to JSON values.
///
/// ```
/// use session_core::SessionData;
///
/// let mut data = SessionData::new();
/// data.insert("cart_items", &3u32)?;
/// assert_eq!(data.get::<u32>("cart_items")?, Some(3));
/// assert_eq!(data.get::<u32>("missing")?, None);
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionData(BTreeMap<String, serde_json::Value>);

impl SessionData {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `key` as a `T`; `Ok(None)` when absent.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the stored value is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.0
            .get(key)
            .map(|v| {
                T::deserialize(v)
                    .map_err(|e| Error::InvalidInput(format!("session data {key:?}: {e}")))
            })
            .transpose()
    }

    /// Stores `value` under `key`, replacing what was there.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `value` cannot be represented as JSON (a map with non-string
    /// keys, say) or nests deeper than the data may ([`MAX_DATA_DEPTH`]).
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<()> {
        let key = key.into();
        let value = data_value(&key, value)?;
        self.0.insert(key, value);
        Ok(())
    }

    /// The raw JSON value of `key`.
    pub(crate) fn value(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.get(key)
    }

    pub(crate) fn insert_json(&mut self, key: String, value: serde_json::Value) {
        self.0.insert(key, value);
    }

    /// Removes `key`; true when it was present.
    pub fn remove(&mut self, key: &str) -> bool {
        self.0.remove(key).is_some()
    }

    /// True when no key is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys and raw JSON values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        if self.0.is_empty() {
            return Ok(Vec::new());
        }
        // Values get here checked (`insert`, `DataChanges::set`); this keeps the rule for
        // whatever other way data is ever built.
        for (key, value) in &self.0 {
            check_depth(key, value)?;
        }
        let bytes = serde_json::to_vec(&self.0)
            .map_err(|e| Error::InvalidInput(format!("session data: {e}")))?;
        if bytes.len() > MAX_DATA_LEN {
            return Err(Error::InvalidInput(format!(
                "session data is {} bytes encoded; the limit is {MAX_DATA_LEN}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(Self::new());
        }
        serde_json::from_slice(bytes)
            .map(Self)
            .map_err(|e| Error::Corrupt(format!("application data: {e}")))
    }
}

/// `value` as JSON to store under `key` of the application data: refused if it cannot be
/// represented as JSON or nests deeper than [`MAX_DATA_DEPTH`] allows.
pub(crate) fn data_value<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<serde_json::Value> {
    let value = serde_json::to_value(value)
        .map_err(|e| Error::InvalidInput(format!("session data value: {e}")))?;
    check_depth(key, &value)?;
    Ok(value)
}

/// Refuses `value` (stored under `key`) if the data holding it would nest deeper than
/// [`MAX_DATA_DEPTH`]: the data's object is one level, so `value` may have one less.
fn check_depth(key: &str, value: &serde_json::Value) -> Result<()> {
    let limit = MAX_DATA_DEPTH - 1;
    if nesting_exceeds(value, limit) {
        return Err(Error::InvalidInput(format!(
            "session data {key:?} nests arrays and objects more than {limit} levels deep; the \
             data may nest at most {MAX_DATA_DEPTH} levels (its own object counts as one), as \
             deeper JSON could not be read back. Store a flatter value"
        )));
    }
    Ok(())
}

/// True when arrays and objects nest in `value` more than `limit` levels deep (a scalar: 0,
/// `[]`: 1, `[{}]`: 2). Walks with a stack of its own (no recursion to overflow on a deep
/// value) and stops at the first level past `limit`.
fn nesting_exceeds(value: &serde_json::Value, limit: usize) -> bool {
    use serde_json::Value;
    let mut stack = vec![(value, 1)];
    while let Some((value, level)) = stack.pop() {
        match value {
            Value::Array(_) | Value::Object(_) if level > limit => return true,
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, level + 1))),
            Value::Object(members) => stack.extend(members.values().map(|v| (v, level + 1))),
            _ => {}
        }
    }
    false
}

/// What to create a session for: the user, their roles and permissions, and initial data.
///
/// ```
/// use session_core::NewSession;
///
/// let new = NewSession::new("alice")
///     .with_roles(["USER", "ADMIN"])
///     .with_permissions(["orders:read"])
///     .with_user_agent("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub(crate) user_id: String,
    pub(crate) authz: Authz,
    pub(crate) data: SessionData,
    pub(crate) device: Device,
    pub(crate) anonymous: bool,
    pub(crate) login_epoch: Option<LoginEpoch>,
    /// When the user last proved who they are, if not at this session's creation (ms): an
    /// impersonation carries the admin's last proof through, never renewing it.
    pub(crate) proved_at_ms: Option<u64>,
}

impl NewSession {
    /// A session for `user_id` (1–255 bytes), with no roles, no permissions and no data. For a
    /// login after a password check, start from
    /// [`SessionStore::new_login`](crate::SessionStore::new_login) instead, called before the
    /// check: its session is refused if the user's sessions are ended meanwhile (a password
    /// change).
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            authz: Authz::default(),
            data: SessionData::new(),
            device: Device::default(),
            anonymous: false,
            login_epoch: None,
            proved_at_ms: None,
        }
    }

    /// An **anonymous session**: one that belongs to no user, for what a visitor keeps before
    /// logging in (a cart, a flash message). It has no roles and no permissions (a store
    /// refuses one with either), is in no user's index and never counts against a user's
    /// limit; every guard treats it as "not logged in" (401). It expires like any session.
    ///
    /// The request core creates one lazily, on a visitor's first write
    /// ([`AuthSession`](crate::web::AuthSession)), and ends it at login: a login always starts a new
    /// session under a new token, carrying over only the data the application chooses.
    ///
    /// ```
    /// use session_core::{MemoryStore, NewSession, SessionConfig, SessionData, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(SessionConfig::default());
    /// let mut data = SessionData::new();
    /// data.insert("cart", &["apple"])?;
    /// let (token, session) = store.create(NewSession::anonymous().with_data(data)).await?;
    /// assert!(session.is_anonymous());
    /// assert_eq!(session.user_id(), "");
    /// assert!(store.load(&token).await?.is_some_and(|s| s.is_anonymous()));
    /// # Ok::<(), session_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn anonymous() -> Self {
        Self {
            anonymous: true,
            ..Self::new(String::new())
        }
    }

    /// Checks the owner before a store creates the session: a usable user id, or an anonymous
    /// session without roles and permissions.
    pub(crate) fn check_owner(&self) -> Result<()> {
        if self.anonymous {
            self.authz.check_anonymous()?;
        } else {
            check_user_id(&self.user_id)?;
        }
        self.device.check()?;
        if !self.device.impersonator.is_empty() {
            check_user_id(&self.device.impersonator)?;
            if self.anonymous || self.device.remembered {
                return Err(Error::InvalidInput(
                    "an impersonation session has a user and is never remembered".into(),
                ));
            }
        }
        match &self.login_epoch {
            Some(epoch) if self.anonymous || epoch.user_id() != self.user_id => {
                Err(Error::InvalidInput(
                    "the login epoch was read for another user than the session's".into(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The login's epoch, read before the credentials were checked: the store then creates the
    /// session only if none of the user's sessions were ended since
    /// ([`Error::LoginSuperseded`] otherwise). What
    /// [`SessionStore::new_login`](crate::SessionStore::new_login) hands out carries it.
    #[must_use]
    pub(crate) fn with_login_epoch(mut self, epoch: LoginEpoch) -> Self {
        self.login_epoch = Some(epoch);
        self
    }

    /// Sets the roles (duplicates are dropped).
    #[must_use]
    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.authz.roles = normalized(roles);
        self
    }

    /// Sets the permissions (duplicates are dropped).
    #[must_use]
    pub fn with_permissions<I, S>(mut self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.authz.permissions = normalized(permissions);
        self
    }

    /// Sets the initial application data.
    #[must_use]
    pub fn with_data(mut self, data: SessionData) -> Self {
        self.data = data;
        self
    }

    /// Sets the login's `User-Agent`, which a list of the user's sessions shows (with the
    /// browser and operating system read from it: [`SessionInfo`]). Cut to
    /// [`MAX_LABEL_CHARS`](crate::MAX_LABEL_CHARS) characters; an empty one is none.
    ///
    /// It is client text: escape it where you display it (JSON encoding does), and log it
    /// through [`log_safe`](crate::logging::log_safe).
    ///
    /// ```
    /// use session_core::{MemoryStore, NewSession, SessionConfig, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(SessionConfig::default());
    /// let new = NewSession::new("alice").with_user_agent("x".repeat(300));
    /// let (_, session) = store.create(new).await?;
    /// assert_eq!(session.user_agent().map(|l| l.chars().count()), Some(256));
    /// # Ok::<(), session_core::Error>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.device.label = bounded_label(user_agent.into());
        self
    }

    /// Sets the client's address. The session keeps only its network (an IPv4 address's
    /// /24, an IPv6 address's /48), never the whole address: a list of the user's sessions
    /// shows it, to tell one place from another.
    ///
    /// Which address is the client's is the application's call (behind a proxy, only it
    /// knows which forwarding header to trust).
    #[must_use]
    pub fn with_client_ip(mut self, ip: std::net::IpAddr) -> Self {
        self.device.network = Some(Network::of(ip));
        self
    }

    /// Names how the user proved who they are for this login (`"password"`, `"passkey"`,
    /// whatever the application calls its methods): at most
    /// [`MAX_METHOD_LEN`](crate::MAX_METHOD_LEN) bytes of `[A-Za-z0-9._-]`, checked when the
    /// session is created ([`Error::InvalidInput`] otherwise).
    #[must_use]
    pub fn with_method(mut self, method: impl Into<String>) -> Self {
        self.device.method = method.into();
        self
    }

    /// A login that asked to be remembered ("keep me signed in"): the session gets the
    /// longer limits of
    /// [`SessionConfigBuilder::remember_idle_timeout`](crate::SessionConfigBuilder::remember_idle_timeout)
    /// and [`remember_absolute_timeout`](crate::SessionConfigBuilder::remember_absolute_timeout),
    /// and its cookie a `Max-Age` (an ordinary login's cookie has none: it ends with the
    /// browser). Rotation, logout, revocation, the per-user limit and role changes treat both
    /// alike.
    ///
    /// ```
    /// use session_core::{MemoryStore, NewSession, SessionConfig, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(SessionConfig::default());
    /// let (_, session) = store.create(NewSession::new("alice").with_remember(true)).await?;
    /// let lifetime = session.expires_at().duration_since(session.created_at())?;
    /// assert_eq!(lifetime.as_secs(), 30 * 24 * 3600);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn with_remember(mut self, remember: bool) -> Self {
        self.device.remembered = remember;
        self
    }

    /// Marks the session as `admin` acting as this session's user (impersonation): it ends
    /// [`SessionConfigBuilder::impersonation_timeout`](crate::SessionConfigBuilder::impersonation_timeout)
    /// after creation (15 minutes by default), is never fresh for step-up guards (an admin's
    /// proof is not the user's), is listed with [`SessionInfo::impersonated_by`], and
    /// [`Session::impersonated_by`] tells guards and handlers. Start one with
    /// [`AuthSession::impersonate`](crate::web::AuthSession::impersonate), which also checks
    /// who may impersonate whom.
    #[must_use]
    pub fn impersonated_by(mut self, admin: impl Into<String>) -> Self {
        self.device.impersonator = admin.into();
        self
    }
}

pub(crate) fn normalized<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut v: Vec<String> = items.into_iter().map(Into::into).collect();
    v.sort();
    v.dedup();
    v
}

/// Checks a user id before it becomes part of a key.
pub(crate) fn check_user_id(user_id: &str) -> Result<()> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
        return Err(Error::InvalidInput(format!(
            "user id must be 1-{MAX_USER_ID_LEN} bytes, got {}",
            user_id.len()
        )));
    }
    Ok(())
}

/// Roles and permissions: the part of a record that "set roles for user" replaces.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Authz {
    pub(crate) roles: Vec<String>,
    pub(crate) permissions: Vec<String>,
}

impl Authz {
    /// An anonymous session's authorization: none at all.
    pub(crate) fn check_anonymous(&self) -> Result<()> {
        if self.roles.is_empty() && self.permissions.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidInput(
                "an anonymous session has no roles or permissions: log the user in \
                 (NewSession::new(user_id)) to give them"
                    .to_owned(),
            ))
        }
    }

    /// The length-prefixed block as stored (2 bytes of length, then postcard).
    pub(crate) fn encode_block(&self) -> Result<Vec<u8>> {
        let body = postcard::to_allocvec(self)
            .map_err(|e| Error::InvalidInput(format!("roles and permissions: {e}")))?;
        if body.len() > MAX_AUTHZ_LEN {
            return Err(Error::InvalidInput(format!(
                "roles and permissions take {} bytes encoded; the limit is {MAX_AUTHZ_LEN}",
                body.len()
            )));
        }
        let mut out = Vec::with_capacity(2 + body.len());
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Reads a block written by [`Authz::encode_block`] (as the store hands one back).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
    pub(crate) fn decode_block(block: &[u8]) -> Result<Self> {
        let corrupt = || Error::Corrupt(format!("authorization block ({} bytes)", block.len()));
        let (len, body) = block.split_at_checked(2).ok_or_else(corrupt)?;
        if usize::from(u16::from_be_bytes([len[0], len[1]])) != body.len() {
            return Err(corrupt());
        }
        Self::from_body(body).map_err(|_| corrupt())
    }

    /// The postcard body of a block; bytes after the two lists are refused (the encoder never
    /// writes any, so they would be a second meaning for one block).
    fn from_body(body: &[u8]) -> std::result::Result<Self, postcard::Error> {
        match postcard::take_from_bytes(body)? {
            (authz, []) => Ok(authz),
            _ => Err(postcard::Error::DeserializeBadEncoding),
        }
    }
}

/// A record's encoding in the order it is stored: `head ++ authz ++ data`.
pub(crate) struct EncodedParts {
    pub(crate) head: Vec<u8>,
    pub(crate) authz: Vec<u8>,
    pub(crate) data: Vec<u8>,
}

/// A session record without its key: exactly what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) deadline_ms: u64,
    pub(crate) last_seen_ms: u64,
    pub(crate) created_ms: u64,
    /// When the user last entered the password in this session (ms).
    pub(crate) auth_time_ms: u64,
    pub(crate) user_id: String,
    pub(crate) device: Device,
    pub(crate) authz: Authz,
    pub(crate) data: SessionData,
    /// Set on the marker a [`Storage`](crate::Storage) keeps in place of an ended session until
    /// its deadline (see [`crate::ended`]): never live, holding only the deadline and the user.
    pub(crate) ended: Option<EndReason>,
}

impl Record {
    /// The owner check of [`NewSession::check_owner`] for a record: an empty user id is an
    /// anonymous session.
    fn check_owner(&self) -> Result<()> {
        if self.user_id.is_empty() {
            self.authz.check_anonymous()
        } else {
            check_user_id(&self.user_id)
        }
    }

    /// True for an anonymous session's record (no user).
    pub(crate) fn is_anonymous(&self) -> bool {
        self.user_id.is_empty()
    }

    /// The record of a session created now (ms) from `new`, ending `absolute_ms` later; the
    /// password was entered for it now.
    pub(crate) fn created(new: NewSession, now: u64, absolute_ms: u64) -> Self {
        Self {
            deadline_ms: now + absolute_ms,
            last_seen_ms: now,
            created_ms: now,
            auth_time_ms: new.proved_at_ms.map_or(now, |at| at.min(now)),
            user_id: new.user_id,
            device: new.device,
            authz: new.authz,
            data: new.data,
            ended: None,
        }
    }

    /// The user proved who they are again at `ms`, by `method` (a re-authentication).
    pub(crate) fn prove(&mut self, ms: u64, method: &str) {
        self.auth_time_ms = ms;
        self.device.method = method.to_owned();
    }

    /// The marker kept in place of this session once it ended for `reason`: its deadline and
    /// its user, nothing else.
    pub(crate) fn ended_for(&self, reason: EndReason) -> Self {
        Self {
            deadline_ms: self.deadline_ms,
            last_seen_ms: self.created_ms,
            created_ms: self.created_ms,
            auth_time_ms: self.created_ms,
            user_id: self.user_id.clone(),
            device: Device::default(),
            authz: Authz::default(),
            data: SessionData::new(),
            ended: Some(reason),
        }
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let EncodedParts {
            mut head,
            authz,
            data,
        } = self.encode_parts()?;
        head.reserve_exact(authz.len() + data.len());
        head.extend_from_slice(&authz);
        head.extend_from_slice(&data);
        Ok(head)
    }

    /// The encoding in its three parts (header with user id, authorization block, data), whose
    /// concatenation is [`Record::encode`]: a store that may have to swap the authorization
    /// block at write time (see `set_user_authz`) is handed the parts, not offsets.
    pub(crate) fn encode_parts(&self) -> Result<EncodedParts> {
        if let Some(reason) = self.ended {
            // A marker is all head: no roles, no data.
            return Ok(EncodedParts {
                head: self.encode_ended(reason),
                authz: Vec::new(),
                data: Vec::new(),
            });
        }
        self.check_owner()?;
        let authz = self.authz.encode_block()?;
        let data = self.data.encode()?;
        let device = self.device.encode();
        let mut head = Vec::with_capacity(28 + self.user_id.len() + device.len());
        head.push(FORMAT_VERSION);
        for ms in [
            self.deadline_ms,
            self.last_seen_ms,
            self.created_ms,
            self.auth_time_ms,
        ] {
            head.extend_from_slice(&ms.min(MAX_MS).to_be_bytes()[2..]);
        }
        debug_assert_eq!(head.len(), USER_LEN_OFFSET);
        head.push(self.user_id.len() as u8);
        head.extend_from_slice(self.user_id.as_bytes());
        // At most 256 characters of at most 4 bytes, and a few more: fits the 2-byte length.
        head.extend_from_slice(&(device.len() as u16).to_be_bytes());
        head.extend_from_slice(&device);
        Ok(EncodedParts { head, authz, data })
    }

    /// An ended session's marker: [`ENDED_FORMAT`], the reason's byte, the deadline and
    /// created times, the user id with its length.
    fn encode_ended(&self, reason: EndReason) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(15 + self.user_id.len());
        bytes.extend_from_slice(&[ENDED_FORMAT, reason.code()]);
        for ms in [self.deadline_ms, self.created_ms] {
            bytes.extend_from_slice(&ms.min(MAX_MS).to_be_bytes()[2..]);
        }
        bytes.push(self.user_id.len() as u8);
        bytes.extend_from_slice(self.user_id.as_bytes());
        bytes
    }

    /// The marker [`Record::encode_ended`] wrote, or `None` when `bytes` are not one.
    fn decode_ended(bytes: &[u8]) -> Option<Self> {
        let (&[ENDED_FORMAT, code], rest) = bytes.split_first_chunk::<2>()? else {
            return None;
        };
        let (times, rest) = rest.split_first_chunk::<12>()?;
        let (&len, user) = rest.split_first()?;
        let ms = |b: &[u8]| {
            let mut full = [0u8; 8];
            full[2..].copy_from_slice(b);
            u64::from_be_bytes(full)
        };
        let user_id = std::str::from_utf8(user).ok()?;
        if user.len() != usize::from(len) || user_id.len() > MAX_USER_ID_LEN {
            return None;
        }
        let created_ms = ms(&times[6..]);
        Some(Self {
            deadline_ms: ms(&times[..6]),
            last_seen_ms: created_ms,
            created_ms,
            auth_time_ms: created_ms,
            user_id: user_id.to_owned(),
            device: Device::default(),
            authz: Authz::default(),
            data: SessionData::new(),
            ended: Some(EndReason::from_code(code)?),
        })
    }

    /// Decodes stored bytes; anything unexpected is [`Error::Corrupt`], never a panic.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = |what: &str| Error::Corrupt(format!("{what} ({} bytes)", bytes.len()));
        match bytes.first() {
            Some(&FORMAT_VERSION) => {}
            Some(&ENDED_FORMAT) => {
                return Self::decode_ended(bytes).ok_or_else(|| corrupt("ended-session marker"))
            }
            Some(v) => return Err(corrupt(&format!("unknown format version {v}"))),
            None => return Err(corrupt("empty value")),
        }
        let u48 = |at: usize| -> Result<u64> {
            let b = bytes
                .get(at..at + 6)
                .ok_or_else(|| corrupt("truncated header"))?;
            let mut full = [0u8; 8];
            full[2..].copy_from_slice(b);
            Ok(u64::from_be_bytes(full))
        };
        let deadline_ms = u48(DEADLINE_OFFSET)?;
        let last_seen_ms = u48(LAST_SEEN_OFFSET)?;
        let created_ms = u48(CREATED_OFFSET)?;
        let auth_time_ms = u48(AUTH_TIME_OFFSET)?;
        let user_len = usize::from(
            *bytes
                .get(USER_LEN_OFFSET)
                .ok_or_else(|| corrupt("truncated header"))?,
        );
        let user_start = USER_LEN_OFFSET + 1;
        let user = bytes
            .get(user_start..user_start + user_len)
            .ok_or_else(|| corrupt("truncated user id"))?;
        let user_id = std::str::from_utf8(user)
            .map_err(|_| corrupt("user id is not UTF-8"))?
            .to_owned();
        let device_at = user_start + user_len;
        let device_len = bytes
            .get(device_at..device_at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| corrupt("truncated device length"))?;
        let device = bytes
            .get(device_at + 2..device_at + 2 + device_len)
            .ok_or_else(|| corrupt("truncated device block"))?;
        let device = Device::decode(device).ok_or_else(|| corrupt("device block"))?;
        let authz_at = device_at + 2 + device_len;
        let authz_len = bytes
            .get(authz_at..authz_at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| corrupt("truncated authorization length"))?;
        let authz_bytes = bytes
            .get(authz_at + 2..authz_at + 2 + authz_len)
            .ok_or_else(|| corrupt("truncated authorization block"))?;
        let authz = Authz::from_body(authz_bytes)
            .map_err(|e| corrupt(&format!("authorization block: {e}")))?;
        if user_id.is_empty() && authz.check_anonymous().is_err() {
            return Err(corrupt("anonymous session with roles or permissions"));
        }
        let data_bytes = &bytes[authz_at + 2 + authz_len..];
        if data_bytes.len() > MAX_DATA_LEN {
            return Err(corrupt("application data longer than the encoder writes"));
        }
        let data = SessionData::decode(data_bytes)?;
        Ok(Self {
            deadline_ms,
            last_seen_ms,
            created_ms,
            auth_time_ms,
            user_id,
            device,
            authz,
            data,
            ended: None,
        })
    }
}

/// An encoded record with a new proof of who the user is (a re-authentication): its auth
/// time set to `ms` and its method to `method` (the same change `rotate.lua` makes); `None`
/// for bytes that are not a record of this format.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // read back only from Redis
pub(crate) fn with_proof(bytes: &[u8], ms: u64, method: &str) -> Option<Vec<u8>> {
    let mut record = Record::decode(bytes).ok().filter(|r| r.ended.is_none())?;
    record.prove(ms, method);
    record.encode().ok()
}

/// A live session, as loaded from the store.
///
/// It carries everything a guard needs (user, roles, permissions), the times, and the
/// application data. It does not carry the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub(crate) key: SessionKey,
    /// Shared: a loaded session is handed to every extractor of a request and, from the
    /// memory store, shares the stored record until either changes (`Arc::make_mut`).
    pub(crate) record: Arc<Record>,
}

impl Session {
    /// The user this session belongs to; empty for an anonymous session.
    pub fn user_id(&self) -> &str {
        &self.record.user_id
    }

    /// True for an anonymous session ([`NewSession::anonymous`]): no user, no roles, not a
    /// login. Code that loads sessions from a store itself must check this before treating a
    /// session as a logged-in user (the request core's extractors and guards do).
    pub fn is_anonymous(&self) -> bool {
        self.record.is_anonymous()
    }

    /// The user's roles, sorted.
    pub fn roles(&self) -> &[String] {
        &self.record.authz.roles
    }

    /// The user's permissions, sorted.
    pub fn permissions(&self) -> &[String] {
        &self.record.authz.permissions
    }

    /// True when the session holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.record.authz.roles.iter().any(|r| r == role)
    }

    /// True when the session holds `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.record
            .authz
            .permissions
            .iter()
            .any(|p| p == permission)
    }

    /// The application data.
    pub fn data(&self) -> &SessionData {
        &self.record.data
    }

    /// When the session was created (at login).
    pub fn created_at(&self) -> SystemTime {
        to_system_time(self.record.created_ms)
    }

    /// When the session was last used: now, for a session just loaded; in a listing, to within
    /// [`SessionConfig::touch_interval`](crate::SessionConfigBuilder::touch_interval) (`MemoryStore`)
    /// or a round trip (`RedisStore`).
    pub fn last_seen_at(&self) -> SystemTime {
        to_system_time(self.record.last_seen_ms)
    }

    /// When the session ends however active it is (its absolute deadline).
    pub fn expires_at(&self) -> SystemTime {
        to_system_time(self.record.deadline_ms)
    }

    /// When the user last entered their password in this session: at login
    /// ([`SessionStore::create`](crate::SessionStore::create)) or at the last
    /// [`SessionStore::reauthenticate`](crate::SessionStore::reauthenticate). Guards for
    /// sensitive operations ([`Require::fresh`](crate::web::Require::fresh),
    /// `#[fresh_login(max_age = "5m")]`) compare it with the clock.
    pub fn auth_time(&self) -> SystemTime {
        to_system_time(self.record.auth_time_ms)
    }

    /// How the user last proved who they are in this session: the method of the login
    /// ([`NewSession::with_method`]) or of the last
    /// [`SessionStore::reauthenticate`](crate::SessionStore::reauthenticate) (`"password"`,
    /// `"passkey"`, ...); empty when the application named none. Freshness guards can require
    /// one ([`Require::fresh_by`](crate::web::Require::fresh_by), `#[fresh_login(.., method = "passkey")]`).
    pub fn auth_method(&self) -> &str {
        &self.record.device.method
    }

    /// The user id of the admin acting as this session's user, for an impersonation session
    /// ([`NewSession::impersonated_by`]); `None` for the user's own session.
    pub fn impersonated_by(&self) -> Option<&str> {
        Some(self.record.device.impersonator.as_str()).filter(|a| !a.is_empty())
    }

    /// Whether the session is **bound to a device** (DBSC, `SessionLayer::with_dbsc`): the
    /// browser registered a key it keeps in hardware, and each request must carry the
    /// short-lived credential only that key can renew, so a copied cookie stops working
    /// within minutes. `#[device_bound]` requires it.
    pub fn is_device_bound(&self) -> bool {
        self.record.device.binding.is_some()
    }

    /// Whether the login came from a **new device**: the user's login history holds an
    /// earlier successful login, and none from this browser, system and network
    /// ([`AuthSession::login`](crate::web::AuthSession::login) decides it). An application tells
    /// the user (an e-mail: "a new sign-in to your account") when it is true.
    pub fn is_new_device(&self) -> bool {
        self.record.device.new_device
    }

    /// The login's `User-Agent` ([`NewSession::with_user_agent`]), if it had one.
    pub fn user_agent(&self) -> Option<&str> {
        let label = &self.record.device.label;
        (!label.is_empty()).then_some(label.as_str())
    }

    /// The session's key in the store (the SHA-256 of its token).
    pub fn key(&self) -> SessionKey {
        self.key
    }

    /// The session's public handle, safe to show its owner.
    pub fn handle(&self) -> SessionHandle {
        self.key.handle()
    }

    /// The session's record as bytes (everything but its key), for a [`Storage`](crate::Storage)
    /// that keeps sessions outside this process (a database, another cache); read it back with
    /// [`Session::from_bytes`]. The same format as a Redis record, at most a few hundred
    /// bytes plus the data.
    ///
    /// ```
    /// use session_core::{MemoryStore, NewSession, Session, SessionConfig, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(SessionConfig::default());
    /// let (_, session) = store.create(NewSession::new("alice").with_roles(["USER"])).await?;
    /// let bytes = session.to_bytes()?;
    /// assert_eq!(Session::from_bytes(session.key(), &bytes)?, session);
    /// # Ok::<(), session_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] only for a session no store would hold (never for one a store
    /// handed out).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.record.encode()
    }

    /// The session `key` files, from the bytes [`Session::to_bytes`] wrote.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for bytes it did not write (cut short, another format): treat the
    /// session as absent and say so in a log, never as a login.
    pub fn from_bytes(key: SessionKey, bytes: &[u8]) -> Result<Self> {
        Ok(Self {
            key,
            record: Arc::new(Record::decode(bytes)?),
        })
    }

    /// What a listing shows of this session ([`SessionStore::list_user_sessions`](crate::SessionStore::list_user_sessions)).
    pub(crate) fn info(&self) -> SessionInfo {
        let device = &self.record.device;
        let (browser, os) = device.browser_and_os();
        SessionInfo {
            handle: self.handle(),
            created_at: self.created_at(),
            last_seen_at: self.last_seen_at(),
            expires_at: self.expires_at(),
            user_agent: self.user_agent().map(str::to_owned),
            browser,
            os,
            network: device.network.map(|n| n.to_string()),
            method: (!device.method.is_empty()).then(|| device.method.clone()),
            remembered: device.remembered,
            new_device: device.new_device,
            impersonated_by: self.impersonated_by().map(str::to_owned),
            bound: self.is_device_bound(),
            current: false,
        }
    }
}

/// One entry of a user's session list: what a "your devices" page shows of a session, and
/// nothing a client could use (no token, no key, no whole client address).
///
/// It serializes with its times in RFC 3339 (UTC, milliseconds), ready for a JSON answer:
///
/// ```
/// use session_core::{MemoryStore, NewSession, SessionConfig, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new(SessionConfig::default());
/// let new = NewSession::new("alice")
///     .with_user_agent("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
///     .with_client_ip("203.0.113.7".parse()?)
///     .with_method("password");
/// store.create(new).await?;
/// let listed = store.list_user_sessions("alice").await?;
/// let json = serde_json::to_value(&listed[0])?;
/// assert_eq!(json["browser"], "Firefox");
/// assert_eq!(json["os"], "Linux");
/// assert_eq!(json["network"], "203.0.113.0/24");
/// assert_eq!(json["method"], "password");
/// assert_eq!(json["remembered"], false);
/// assert!(json["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The public handle (not the token).
    pub handle: SessionHandle,
    /// When it was created (at login).
    #[serde(serialize_with = "rfc3339")]
    pub created_at: SystemTime,
    /// When it was last used (see [`Session::last_seen_at`]).
    #[serde(serialize_with = "rfc3339")]
    pub last_seen_at: SystemTime,
    /// Its absolute deadline.
    #[serde(serialize_with = "rfc3339")]
    pub expires_at: SystemTime,
    /// The login's `User-Agent` ([`NewSession::with_user_agent`]), if any.
    pub user_agent: Option<String>,
    /// The browser family read from the `User-Agent` (`Chrome`, `Firefox`, `Safari`, ...), if
    /// recognised.
    pub browser: Option<String>,
    /// The operating system read from the `User-Agent` (`Windows 10`, `Linux`, `iOS`,
    /// `Mac OSX`, ...), if recognised.
    pub os: Option<String>,
    /// The login's network ([`NewSession::with_client_ip`]): `203.0.113.0/24`,
    /// `2001:db8:1::/48`; never the whole address.
    pub network: Option<String>,
    /// How the user last proved who they are in this session ([`Session::auth_method`]: the
    /// login's [`NewSession::with_method`], or the last re-authentication's), if the application
    /// said.
    pub method: Option<String>,
    /// Whether the login asked to be remembered ([`NewSession::with_remember`]).
    pub remembered: bool,
    /// Whether the login came from a device the user's login history had not seen.
    pub new_device: bool,
    /// For an impersonation session, the admin acting as the user
    /// ([`NewSession::impersonated_by`]): the list shows it for what it is.
    pub impersonated_by: Option<String>,
    /// Whether the session is bound to a device (DBSC, [`Session::is_device_bound`]): its
    /// cookie is useless on another machine.
    pub bound: bool,
    /// Whether this is the session of the request that asked
    /// ([`AuthSession::sessions`](crate::web::AuthSession::sessions) sets it; a store's own
    /// listing does not know).
    pub current: bool,
}

/// Orders a listing as a "your devices" page shows it: the most recently used first (then the
/// newest, then by handle, so every store gives one order).
pub(crate) fn most_recent_first(listed: &mut [SessionInfo]) {
    listed.sort_by(|a, b| {
        (b.last_seen_at, b.created_at, &a.handle).cmp(&(a.last_seen_at, a.created_at, &b.handle))
    });
}

/// `time` as RFC 3339 text (UTC, milliseconds).
pub(crate) fn rfc3339<S: serde::Serializer>(
    time: &SystemTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_millis(*time))
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    /// `levels` arrays nested in each other around `1`.
    fn nested(levels: usize) -> serde_json::Value {
        (0..levels).fold(serde_json::Value::from(1), |inner, _| {
            serde_json::Value::Array(vec![inner])
        })
    }

    #[test]
    fn data_deeper_than_max_data_depth_is_refused_and_the_deepest_allowed_reads_back() {
        let mut data = SessionData::new();
        data.insert("deep", &nested(MAX_DATA_DEPTH - 1)).unwrap();
        let bytes = data.encode().unwrap();
        assert_eq!(SessionData::decode(&bytes).unwrap(), data);

        let err = data.insert("deeper", &nested(MAX_DATA_DEPTH)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(m) if m.contains(&MAX_DATA_DEPTH.to_string())),
            "{err}"
        );
        assert_eq!(data.value("deeper"), None);
        // Objects count like arrays.
        let object = (0..MAX_DATA_DEPTH).fold(
            serde_json::Value::from(1),
            |inner, _| serde_json::json!({ "k": inner }),
        );
        assert!(matches!(
            data.insert("object", &object),
            Err(Error::InvalidInput(_))
        ));
        // Data built around `insert` is refused when encoded.
        let mut raw = SessionData::new();
        raw.insert_json("deep".to_owned(), nested(MAX_DATA_DEPTH));
        assert!(matches!(raw.encode(), Err(Error::InvalidInput(_))));
    }

    /// What the limit keeps away from: serde_json writes any depth but reads at most 127
    /// levels, so data of 128 levels (an object holding 127) would end its session.
    #[test]
    fn max_data_depth_is_below_what_serde_json_reads() {
        let data = |levels_inside: usize| {
            format!(
                "{{\"k\":{}}}",
                serde_json::to_string(&nested(levels_inside)).unwrap()
            )
        };
        assert!(SessionData::decode(data(126).as_bytes()).is_ok());
        assert!(matches!(
            SessionData::decode(data(127).as_bytes()),
            Err(Error::Corrupt(_))
        ));
        const { assert!(MAX_DATA_DEPTH < 127) };
    }

    /// The named offsets and widths (which the Redis scripts receive as constants) are where
    /// and how wide the encoding puts each field.
    #[test]
    fn the_layout_constants_name_where_each_field_is() {
        let mut r = sample();
        r.device.label = "Firefox".into();
        let bytes = r.encode().unwrap();
        // A big-endian number of `width` bytes at `at`.
        let uint = |at: usize, width: usize| {
            bytes[at..at + width]
                .iter()
                .fold(0u64, |n, b| (n << 8) | u64::from(*b))
        };
        assert_eq!(uint(VERSION_OFFSET, 1), u64::from(FORMAT_VERSION));
        assert_eq!(DEADLINE_OFFSET, VERSION_OFFSET + 1);
        for (at, ms) in [
            (DEADLINE_OFFSET, r.deadline_ms),
            (LAST_SEEN_OFFSET, r.last_seen_ms),
            (CREATED_OFFSET, r.created_ms),
            (AUTH_TIME_OFFSET, r.auth_time_ms),
        ] {
            assert_eq!(uint(at, TIME_BYTES), ms, "{at}");
        }
        assert_eq!(LAST_SEEN_OFFSET, DEADLINE_OFFSET + TIME_BYTES);
        assert_eq!(CREATED_OFFSET, LAST_SEEN_OFFSET + TIME_BYTES);
        assert_eq!(AUTH_TIME_OFFSET, CREATED_OFFSET + TIME_BYTES);
        assert_eq!(USER_LEN_OFFSET, AUTH_TIME_OFFSET + TIME_BYTES);
        let user_len = uint(USER_LEN_OFFSET, USER_LEN_BYTES) as usize;
        assert_eq!(user_len, r.user_id.len());
        let user_at = USER_LEN_OFFSET + USER_LEN_BYTES;
        assert_eq!(&bytes[user_at..user_at + user_len], r.user_id.as_bytes());
        let device_len_at = user_at + user_len;
        let device_len = uint(device_len_at, DEVICE_LEN_BYTES) as usize;
        assert_eq!(device_len, r.device.encode().len());
        let authz_len_at = device_len_at + DEVICE_LEN_BYTES + device_len;
        let authz_len = uint(authz_len_at, AUTHZ_LEN_BYTES) as usize;
        let data_at = authz_len_at + AUTHZ_LEN_BYTES + authz_len;
        assert_eq!(&bytes[data_at..], r.data.encode().unwrap().as_slice());
    }

    fn sample() -> Record {
        Record {
            deadline_ms: 1_800_000_000_000,
            last_seen_ms: 1_700_000_000_500,
            created_ms: 1_700_000_000_000,
            auth_time_ms: 1_700_000_000_250,
            user_id: "alice".into(),
            device: Device::default(),
            authz: Authz {
                roles: vec!["USER".into()],
                permissions: vec![],
            },
            data: SessionData::new(),
            ended: None,
        }
    }

    #[test]
    fn typical_record_is_compact_and_round_trips() {
        let r = sample();
        let bytes = r.encode().unwrap();
        assert_eq!(bytes.len(), 42);
        assert_eq!(Record::decode(&bytes).unwrap(), r);
    }

    #[test]
    fn auth_time_and_device_round_trip_and_the_label_is_bounded() {
        let mut r = sample();
        r.device = Device {
            label: "Mozilla/5.0 (X11; Linux x86_64) é".into(),
            network: Some(Network::of("198.51.100.20".parse().unwrap())),
            method: "password".into(),
            remembered: true,
            new_device: false,
            impersonator: String::new(),
            binding: None,
        };
        r.data.insert("k", "v").unwrap();
        let bytes = r.encode().unwrap();
        let back = Record::decode(&bytes).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.auth_time_ms, 1_700_000_000_250);
        let patched =
            Record::decode(&with_proof(&bytes, 1_750_000_000_000, "passkey").unwrap()).unwrap();
        assert_eq!(patched.auth_time_ms, 1_750_000_000_000);
        assert_eq!(patched.device.method, "passkey");
        let mut expected = r.clone();
        expected.prove(1_750_000_000_000, "passkey");
        assert_eq!(patched, expected);
        let long = NewSession::new("alice").with_user_agent("é".repeat(MAX_LABEL_CHARS + 10));
        assert_eq!(long.device.label.chars().count(), MAX_LABEL_CHARS);
        assert!(NewSession::new("alice")
            .with_user_agent("")
            .device
            .label
            .is_empty());
    }

    #[test]
    fn an_ended_marker_keeps_the_deadline_user_and_reason_only() {
        let mut r = sample();
        r.data.insert("k", "v").unwrap();
        let marker = r.ended_for(EndReason::PasswordChanged);
        let bytes = marker.encode().unwrap();
        assert_eq!(bytes.len(), 15 + "alice".len());
        let back = Record::decode(&bytes).unwrap();
        assert_eq!(back, marker);
        assert_eq!(back.ended, Some(EndReason::PasswordChanged));
        assert_eq!(
            (back.deadline_ms, back.user_id.as_str()),
            (r.deadline_ms, "alice")
        );
        assert!(back.data.is_empty() && back.authz == Authz::default());
        // Cut short, a length that does not match, an unknown reason: corrupt, not a panic.
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_err(), "{cut}");
        }
        let mut long = bytes.clone();
        long.push(b'x');
        assert!(Record::decode(&long).is_err());
        let mut unknown = bytes;
        unknown[1] = 0;
        assert!(Record::decode(&unknown).is_err());
        // Found by the record_decode fuzz target: a marker (of an anonymous session) decodes and
        // encodes back, in parts too, to the same bytes.
        let found = [131, 4, 0, 0, 0, 0, 0, 255, 131, 0, 0, 0, 255, 255, 0];
        let marker = Record::decode(&found).unwrap();
        let parts = marker.encode_parts().unwrap();
        assert_eq!([parts.head, parts.authz, parts.data].concat(), found);
    }

    #[test]
    fn records_of_earlier_versions_are_corrupt() {
        let mut bytes = sample().encode().unwrap();
        for version in [1, 2] {
            bytes[0] = version;
            assert!(matches!(Record::decode(&bytes), Err(Error::Corrupt(_))));
        }
    }

    #[test]
    fn data_round_trips() {
        let mut r = sample();
        r.data.insert("cart", &vec![1, 2, 3]).unwrap();
        let back = Record::decode(&r.encode().unwrap()).unwrap();
        assert_eq!(
            back.data.get::<Vec<i32>>("cart").unwrap(),
            Some(vec![1, 2, 3])
        );
    }

    #[test]
    fn every_truncation_and_foreign_bytes_are_corrupt_not_panics() {
        let mut r = sample();
        r.data.insert("k", "v").unwrap();
        let bytes = r.encode().unwrap();
        for cut in 0..bytes.len() - 1 {
            // Cutting inside the JSON data also fails; cutting exactly at its start is valid.
            let res = Record::decode(&bytes[..cut]);
            if cut != bytes.len() - r.data.encode().unwrap().len() {
                assert!(matches!(res, Err(Error::Corrupt(_))), "cut at {cut}");
            }
        }
        for foreign in [
            &b"hello world"[..],
            b"",
            b"\x01",
            &[0xff; 64],
            b"{\"json\":1}",
        ] {
            assert!(matches!(Record::decode(foreign), Err(Error::Corrupt(_))));
        }
    }

    /// Found by the `record_decode` fuzz target: bytes after the roles and permissions inside
    /// the authorization block were ignored, so two byte strings decoded as one record.
    #[test]
    fn bytes_the_encoder_never_writes_are_corrupt() {
        let EncodedParts { head, authz, data } = sample().encode_parts().unwrap();
        assert!(Record::decode(&[&head[..], &authz, &data].concat()).is_ok());
        // Two stray bytes at the end of the authorization block (its length counting them).
        let body = &authz[2..];
        let padded_len = ((body.len() + 2) as u16).to_be_bytes();
        let padded = [&head[..], &padded_len, body, &[0, 0], &data].concat();
        assert!(matches!(Record::decode(&padded), Err(Error::Corrupt(_))));
        let padded_block = [&padded_len[..], body, &[0, 0]].concat();
        assert!(matches!(
            Authz::decode_block(&padded_block),
            Err(Error::Corrupt(_))
        ));
        // A label longer than the encoder keeps (the sample has no device block: its head ends
        // in 0, 0).
        let long = [&[0u8, 0, 0][..], "é".repeat(MAX_LABEL_CHARS + 1).as_bytes()].concat();
        let long_head = [
            &head[..head.len() - 2],
            &(long.len() as u16).to_be_bytes(),
            &long,
        ]
        .concat();
        let labelled = [&long_head[..], &authz, &data].concat();
        assert!(matches!(Record::decode(&labelled), Err(Error::Corrupt(_))));
        // Application data longer than the encoder writes.
        let big = format!("{{\"k\":\"{}\"}}", "x".repeat(MAX_DATA_LEN));
        let oversized = [&head[..], &authz, big.as_bytes()].concat();
        assert!(matches!(Record::decode(&oversized), Err(Error::Corrupt(_))));
    }

    #[test]
    fn oversized_inputs_are_refused() {
        let mut r = sample();
        r.user_id = "u".repeat(256);
        assert!(matches!(r.encode(), Err(Error::InvalidInput(_))));
        let mut r = sample();
        r.data.insert("big", &"x".repeat(MAX_DATA_LEN)).unwrap();
        assert!(matches!(r.encode(), Err(Error::InvalidInput(_))));
    }
}
