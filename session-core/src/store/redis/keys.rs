//! Key names, built once from the prefix.

use redis::cluster_routing::Slot;

use crate::token::{SessionKey, SESSION_KEY_BYTES};

#[derive(Debug, Clone)]
pub(crate) struct KeyLayout {
    pub(crate) session_prefix: Vec<u8>,
    pub(crate) index_prefix: Vec<u8>,
    /// Where an ended session's reason is kept, under its key (see `crate::ended`).
    pub(crate) ended_prefix: Vec<u8>,
    #[cfg(feature = "throttle")]
    throttle_prefix: Vec<u8>,
    role_change_prefix: Vec<u8>,
    epoch_prefix: Vec<u8>,
    history_prefix: Vec<u8>,
}

impl KeyLayout {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            session_prefix: format!("{prefix}:s:").into_bytes(),
            index_prefix: format!("{prefix}:u:").into_bytes(),
            ended_prefix: format!("{prefix}:x:").into_bytes(),
            #[cfg(feature = "throttle")]
            throttle_prefix: format!("{prefix}:t:").into_bytes(),
            role_change_prefix: format!("{prefix}:r:").into_bytes(),
            epoch_prefix: format!("{prefix}:e:").into_bytes(),
            history_prefix: format!("{prefix}:h:").into_bytes(),
        }
    }

    pub(crate) fn session(&self, key: &SessionKey) -> Vec<u8> {
        [self.session_prefix.as_slice(), key.as_bytes()].concat()
    }

    /// The ended session's reason (one byte, until the session's deadline). Not in the
    /// session key's hash slot: on a cluster it is written in a step of its own.
    pub(crate) fn ended(&self, key: &SessionKey) -> Vec<u8> {
        [self.ended_prefix.as_slice(), key.as_bytes()].concat()
    }

    pub(crate) fn index(&self, user_id: &str) -> Vec<u8> {
        [self.index_prefix.as_slice(), user_id.as_bytes()].concat()
    }

    /// The user's last role change (see `SessionConfigBuilder::role_change_window`). Always in the
    /// hash slot of the user's index, so that one Redis Cluster script can read or write both.
    pub(crate) fn role_change(&self, user_id: &str) -> Vec<u8> {
        same_slot(&self.role_change_prefix, &self.index(user_id))
    }

    /// The user's login epoch (see `LoginEpoch`), in the hash slot of the user's index like
    /// the role change.
    pub(crate) fn epoch(&self, user_id: &str) -> Vec<u8> {
        same_slot(&self.epoch_prefix, &self.index(user_id))
    }

    /// The user's login history (a list, newest first), in the hash slot of the user's index.
    pub(crate) fn history(&self, user_id: &str) -> Vec<u8> {
        same_slot(&self.history_prefix, &self.index(user_id))
    }

    #[cfg(feature = "throttle")]
    pub(crate) fn throttle(&self, username: &str) -> Vec<u8> {
        [self.throttle_prefix.as_slice(), username.as_bytes()].concat()
    }
}

/// An index member (16 raw bytes) as a key; `None` for anything else.
pub(crate) fn member_key(member: &[u8]) -> Option<SessionKey> {
    <[u8; SESSION_KEY_BYTES]>::try_from(member)
        .ok()
        .map(SessionKey::from_bytes)
}

/// A key that starts with `prefix`, names `key` and lies in `key`'s Redis Cluster hash slot.
///
/// A slot is the CRC16 of the key's hash tag (the text between the first `{` and the next
/// `}`, when not empty) or else of the whole key. So: a key with a tag keeps it by being
/// appended; a key without `}` becomes the tag; a key with a `}` but no tag (rare: user ids
/// with braces) gets a short numeric tag found to hash to the same slot.
fn same_slot(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    if hash_tag(key).is_some() {
        return [prefix, key].concat();
    }
    if !key.contains(&b'}') {
        return [prefix, b"{", key, b"}"].concat();
    }
    let slot = Slot::for_key(key);
    let tag = (0u32..)
        .map(|n| n.to_string())
        .find(|t| Slot::for_key(t.as_bytes()) == slot)
        .unwrap_or_default();
    [prefix, b"{", tag.as_bytes(), b"}", key].concat()
}

/// The key's hash tag, as Redis Cluster finds it.
fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|b| *b == b'{')?;
    let len = key[open + 1..].iter().position(|b| *b == b'}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_change_key_shares_the_index_slot_for_any_user_id() {
        let keys = KeyLayout::new("app");
        for user in [
            "alice", "a{b}c", "a}b", "a{b", "{}x", "}{", "a{}b}c", "x{y}z}w",
        ] {
            let index = keys.index(user);
            let marker = keys.role_change(user);
            assert_eq!(Slot::for_key(&marker), Slot::for_key(&index), "{user}");
            assert!(marker.starts_with(b"app:r:"), "{user}");
        }
        assert_ne!(keys.role_change("a}b"), keys.role_change("a}c"));
        assert_eq!(keys.role_change("alice"), b"app:r:{app:u:alice}");
    }
}
