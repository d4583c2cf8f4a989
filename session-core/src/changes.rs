//! Per-key changes to a session's application data ([`DataChanges`]), applied by the store in
//! one atomic step ([`SessionStore::update_data`]), and the retrying read-modify-write of one
//! key built on them (`update_value`, what `AuthSession::update` runs).
//!
//! Why not "load, change, save": two requests of the same session that each load the data,
//! change a different key and save the whole of it back lose one of the two changes (the later
//! save writes the earlier data). [`SessionStore::update_data`] sends only the keys that change
//! and the store merges them into whatever is stored at that moment, so writers of different
//! keys never clobber each other. Writers of the *same* key that compute the new value from the
//! old one (a counter, a cart) also state what they read ([`DataChanges::expect`]); the store
//! refuses the change if the key holds something else by then ([`Error::Conflict`], with the data
//! as stored), and `AuthSession::update` tries again with what is stored now.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::record::{data_value, SessionData};
use crate::store::SessionStore;
use crate::token::Token;

/// How many times `AuthSession::update` tries before it gives up with [`Error::Contended`]. A try
/// fails only when another writer's try on the same key succeeded since this one read the key,
/// so up to this many writers of one key at once always all succeed.
pub const MAX_UPDATE_ATTEMPTS: u32 = 64;

/// Changes to some keys of a session's application data, and optionally what those (or other)
/// keys must hold for the changes to apply. Keys not named are left as stored.
///
/// ```
/// use session_core::{DataChanges, Error, MemoryStore, NewSession, SessionConfig, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new(SessionConfig::default());
/// let (token, _) = store.create(NewSession::new("alice")).await?;
///
/// let mut changes = DataChanges::new();
/// changes.set("theme", "dark")?.remove("flash");
/// let data = store.update_data(&token, &changes).await?;
/// assert_eq!(data.get::<String>("theme")?.as_deref(), Some("dark"));
///
/// // Compare-and-set: applies only while "visits" is still absent.
/// let mut first = DataChanges::new();
/// first.expect::<u32>("visits", None)?.set("visits", &1u32)?;
/// assert!(store.update_data(&token, &first).await.is_ok());
/// match store.update_data(&token, &first).await {
///     Err(Error::Conflict { data }) => assert_eq!(data.get::<u32>("visits")?, Some(1)),
///     other => panic!("expected a conflict, got {other:?}"),
/// }
/// # Ok::<(), session_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataChanges {
    /// Key → new value; `None` removes the key.
    writes: BTreeMap<String, Option<Value>>,
    /// Key → what it must hold now; `None`: it must be absent.
    expected: BTreeMap<String, Option<Value>>,
}

impl DataChanges {
    /// No changes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` (replacing an earlier change of the same key in this set).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `value` cannot be represented as JSON or nests deeper than
    /// session data may ([`MAX_DATA_DEPTH`](crate::record::MAX_DATA_DEPTH)). This is the
    /// check for every store: Redis merges the value's bytes without parsing them.
    pub fn set<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<&mut Self> {
        let key = key.into();
        let value = data_value(&key, value)?;
        self.writes.insert(key, Some(value));
        Ok(self)
    }

    /// Removes `key` (nothing happens if it is absent).
    pub fn remove(&mut self, key: impl Into<String>) -> &mut Self {
        self.writes.insert(key.into(), None);
        self
    }

    /// Applies the changes only if `key` holds exactly `current` when the store applies them
    /// (`None`: only if `key` is absent); otherwise the store changes nothing and answers
    /// [`Error::Conflict`] with the data as stored. Values are compared by their JSON
    /// encoding (so `1` and `1.0` differ).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `current` cannot be represented as JSON.
    pub fn expect<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        current: Option<&T>,
    ) -> Result<&mut Self> {
        let current = current.map(to_json).transpose()?;
        self.expected.insert(key.into(), current);
        Ok(self)
    }

    /// Like [`DataChanges::expect`], with the JSON value as read from
    /// [`SessionData::iter`] (`None`: absent).
    pub(crate) fn expect_json(
        &mut self,
        key: impl Into<String>,
        current: Option<Value>,
    ) -> &mut Self {
        self.expected.insert(key.into(), current);
        self
    }

    /// The changes, by key: `Some(value)` sets, `None` removes.
    #[cfg(feature = "redis")]
    pub(crate) fn writes(&self) -> impl Iterator<Item = (&str, Option<&Value>)> {
        self.writes.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }

    /// The conditions, by key: `Some(value)`: must hold it; `None`: must be absent.
    #[cfg(feature = "redis")]
    pub(crate) fn expectations(&self) -> impl Iterator<Item = (&str, Option<&Value>)> {
        self.expected.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }

    /// Applies the changes to `data` if every expectation holds: the whole of what a store's
    /// [`SessionStore::update_data`] does, for a store that can run it while it holds the
    /// session exclusively (a lock, a transaction). True when applied; false when an expectation
    /// failed (then `data` is unchanged).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the result would be larger than
    /// [`MAX_DATA_LEN`](crate::record::MAX_DATA_LEN) encoded (then `data` is unchanged).
    pub(crate) fn apply_to(&self, data: &mut SessionData) -> Result<bool> {
        let holds = self
            .expected
            .iter()
            .all(|(key, want)| data.value(key) == want.as_ref());
        if !holds {
            return Ok(false);
        }
        let mut merged = data.clone();
        for (key, value) in &self.writes {
            match value {
                Some(value) => merged.insert_json(key.clone(), value.clone()),
                None => {
                    merged.remove(key);
                }
            }
        }
        // Same limit as a whole save.
        merged.encode()?;
        *data = merged;
        Ok(true)
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::InvalidInput(format!("session data value: {e}")))
}

/// Reads `key`, computes its new value with `f`, and stores it only if nobody changed `key`
/// meanwhile; if somebody did, tries again at once with what is stored now (the store's refusal,
/// [`Error::Conflict`], carries it, so a retry costs no extra read), at most
/// [`MAX_UPDATE_ATTEMPTS`] times. Other keys are never touched. Returns the value stored and the
/// session's data with it. What `AuthSession::update` runs.
///
/// `known` is the data the caller already has (the request's session, say): the first try
/// starts from it without a read, and a stale copy costs one more try, never a lost update.
/// `f` may run more than once; keep it free of side effects.
///
/// # Errors
/// [`Error::Contended`] when `key` changed under every try; [`Error::InvalidInput`] when the
/// stored value is not a `T`, or the new one is not JSON-representable or too large;
/// [`Error::NotFound`] when the session has ended; [`Error::Unavailable`].
pub(crate) async fn update_value<S, T, F>(
    store: &S,
    token: &Token,
    key: &str,
    known: &SessionData,
    mut f: F,
) -> Result<(T, SessionData)>
where
    S: SessionStore + ?Sized,
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> T,
{
    let mut current = known.value(key).cloned();
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let old = current
            .clone()
            .map(|v| {
                T::deserialize(v)
                    .map_err(|e| Error::InvalidInput(format!("session data {key:?}: {e}")))
            })
            .transpose()?;
        let new = f(old);
        let mut changes = DataChanges::new();
        changes.expect_json(key, current).set(key, &new)?;
        match store.update_data(token, &changes).await {
            Ok(data) => return Ok((new, data)),
            // No pause before the next try: the refusal carries the freshest value there is,
            // and a pause would only let it go stale (measured: with random pauses, 50
            // concurrent increments ran out of 16 tries; without, n writers need at most n).
            Err(Error::Conflict { data }) => current = data.value(key).cloned(),
            Err(e) => return Err(e),
        }
    }
    Err(Error::Contended {
        key: key.to_owned(),
        attempts: MAX_UPDATE_ATTEMPTS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_merges_removes_and_checks_expectations() {
        let mut data = SessionData::new();
        data.insert("a", &1).unwrap();
        data.insert("b", &2).unwrap();
        let mut changes = DataChanges::new();
        changes.set("c", &3).unwrap().remove("a");
        assert!(changes.apply_to(&mut data).unwrap());
        assert_eq!(data.get::<i32>("a").unwrap(), None);
        assert_eq!(data.get::<i32>("b").unwrap(), Some(2));
        assert_eq!(data.get::<i32>("c").unwrap(), Some(3));

        let mut stale = DataChanges::new();
        stale.expect("b", Some(&1)).unwrap().set("b", &5).unwrap();
        let before = data.clone();
        assert!(!stale.apply_to(&mut data).unwrap());
        assert_eq!(data, before);
        let mut absent = DataChanges::new();
        absent
            .expect::<i32>("a", None)
            .unwrap()
            .set("a", &9)
            .unwrap();
        assert!(absent.apply_to(&mut data).unwrap());
        assert_eq!(data.get::<i32>("a").unwrap(), Some(9));
    }

    #[test]
    fn apply_refuses_oversized_results_and_leaves_the_data() {
        let mut data = SessionData::new();
        data.insert("a", &1).unwrap();
        let before = data.clone();
        let mut big = DataChanges::new();
        big.set("big", &"x".repeat(crate::record::MAX_DATA_LEN))
            .unwrap();
        assert!(matches!(
            big.apply_to(&mut data),
            Err(Error::InvalidInput(_))
        ));
        assert_eq!(data, before);
    }

    /// `levels` arrays nested in each other around `1`.
    fn nested(levels: usize) -> Value {
        (0..levels).fold(Value::from(1), |inner, _| Value::Array(vec![inner]))
    }

    #[test]
    fn set_refuses_values_nested_deeper_than_the_data_may_hold() {
        use crate::record::MAX_DATA_DEPTH;
        let mut changes = DataChanges::new();
        changes.set("ok", &nested(MAX_DATA_DEPTH - 1)).unwrap();
        let err = changes.set("deep", &nested(MAX_DATA_DEPTH)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(m) if m.contains(&MAX_DATA_DEPTH.to_string())),
            "{err}"
        );
        // The refused change is not in the set; the earlier one still is.
        let keys: Vec<&str> = changes.writes.keys().map(String::as_str).collect();
        assert_eq!(keys, ["ok"]);
    }

    /// Through the store: a too-deep value is refused before anything is written (the Redis
    /// store merges the value's bytes in Lua without parsing them, so the check must be
    /// here), and the session keeps its data and stays loadable.
    async fn a_too_deep_update_is_refused_and_the_session_keeps_its_data(store: &dyn SessionStore) {
        use crate::record::{NewSession, MAX_DATA_DEPTH};
        let (token, _) = store.create(NewSession::new("alice")).await.unwrap();
        let mut cart = DataChanges::new();
        cart.set("cart", &["apple"]).unwrap();
        store.update_data(&token, &cart).await.unwrap();

        let known = SessionData::new();
        // 128 levels with the data's object: what serde_json cannot read back (it stops at
        // 127); stored, it would end the session.
        let err = update_value(store, &token, "deeper", &known, |_: Option<Value>| {
            nested(127)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        // One level past the limit.
        let err = update_value(store, &token, "deep", &known, |_: Option<Value>| {
            nested(MAX_DATA_DEPTH)
        })
        .await
        .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(m) if m.contains(&MAX_DATA_DEPTH.to_string())),
            "{err:?}"
        );

        let session = store
            .load(&token)
            .await
            .expect("the session still loads")
            .expect("the session is still live");
        assert_eq!(
            session.data().get::<Vec<String>>("cart").unwrap(),
            Some(vec!["apple".to_owned()])
        );
        assert_eq!(session.data().get::<Value>("deep").unwrap(), None);
        assert_eq!(session.data().get::<Value>("deeper").unwrap(), None);
        // The deepest value allowed is stored and read back.
        let (_, data) = update_value(store, &token, "deep", &known, |_: Option<Value>| {
            nested(MAX_DATA_DEPTH - 1)
        })
        .await
        .unwrap();
        assert_eq!(data.value("deep"), Some(&nested(MAX_DATA_DEPTH - 1)));
        let session = store.load(&token).await.unwrap().unwrap();
        assert_eq!(
            session.data().value("deep"),
            Some(&nested(MAX_DATA_DEPTH - 1))
        );
    }

    #[tokio::test]
    async fn memory_store_refuses_too_deep_data_and_keeps_the_session() {
        let store = crate::MemoryStore::new(crate::SessionConfig::default());
        a_too_deep_update_is_refused_and_the_session_keeps_its_data(&store).await;
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn redis_store_refuses_too_deep_data_and_keeps_the_session() {
        let server = redis_harness::RedisServer::start_local().expect("a redis-server of our own");
        let store = crate::RedisStore::connect(server.url(), crate::SessionConfig::default())
            .await
            .expect("connect");
        a_too_deep_update_is_refused_and_the_session_keeps_its_data(&store).await;
    }
}
