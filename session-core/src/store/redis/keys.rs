//! Key names, built once from the prefix.

use crate::token::SessionKey;

#[derive(Debug)]
pub(crate) struct KeyLayout {
    pub(crate) session_prefix: Vec<u8>,
    pub(crate) index_prefix: Vec<u8>,
    throttle_prefix: Vec<u8>,
}

impl KeyLayout {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            session_prefix: format!("{prefix}:s:").into_bytes(),
            index_prefix: format!("{prefix}:u:").into_bytes(),
            throttle_prefix: format!("{prefix}:t:").into_bytes(),
        }
    }

    pub(crate) fn session(&self, key: &SessionKey) -> Vec<u8> {
        [self.session_prefix.as_slice(), key.as_bytes()].concat()
    }

    pub(crate) fn index(&self, user_id: &str) -> Vec<u8> {
        [self.index_prefix.as_slice(), user_id.as_bytes()].concat()
    }

    pub(crate) fn throttle(&self, username: &str) -> Vec<u8> {
        [self.throttle_prefix.as_slice(), username.as_bytes()].concat()
    }
}

/// An index member (32 raw bytes) as a key; `None` for anything else.
pub(crate) fn member_key(member: &[u8]) -> Option<SessionKey> {
    <[u8; 32]>::try_from(member)
        .ok()
        .map(SessionKey::from_bytes)
}
