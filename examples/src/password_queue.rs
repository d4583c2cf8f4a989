//! [`PasswordQueue`]: a bound on the password checks in progress or waiting, so a flood of
//! logins gets a quick 503 instead of an ever longer queue in front of the hash.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::ApiError;

/// Seconds a client is asked to wait (`Retry-After`) when the queue is full.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// At most `max` password checks (login, register, and any later reauthentication or password
/// change) in progress or waiting at once; one more is answered at once with 503 `busy`.
///
/// Argon2id costs tens of milliseconds of CPU per check by design, and the hashing pool runs a
/// few at a time; without a bound, each request of a flood waits its turn, holding its
/// connection and memory, and every genuine login behind it waits as long.
#[derive(Debug, Clone)]
pub struct PasswordQueue {
    slots: Arc<Semaphore>,
}

/// A place in the [`PasswordQueue`], held until dropped.
#[derive(Debug)]
pub struct QueueSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl PasswordQueue {
    /// A queue of at most `max` checks (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }

    /// A place in the queue, held for the whole check (take it before any work the check
    /// implies: the throttle, the account lookup, the hash).
    ///
    /// # Errors
    /// 503 `busy` with `Retry-After` when the queue is full.
    pub fn enter(&self) -> Result<QueueSlot, ApiError> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => Ok(QueueSlot(permit)),
            Err(_) => {
                tracing::debug!("password check refused: the queue is full");
                Err(ApiError::busy(BUSY_RETRY_AFTER_SECS))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_refuses_beyond_its_size_and_frees_places_on_drop() {
        let queue = PasswordQueue::new(2);
        let a = queue.enter().unwrap();
        let _b = queue.enter().unwrap();
        let busy = queue.enter().unwrap_err();
        assert_eq!(busy, ApiError::busy(BUSY_RETRY_AFTER_SECS));
        drop(a);
        assert!(queue.enter().is_ok());
        assert!(PasswordQueue::new(0).enter().is_ok());
    }
}
