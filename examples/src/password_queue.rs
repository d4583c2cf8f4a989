//! [`PasswordQueue`]: a bound on the password checks in progress or waiting, so a flood of
//! logins gets a quick 503 instead of an ever longer queue in front of the hash, shared fairly
//! so that one client's flood cannot take every place.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::ApiError;

/// Seconds a client is asked to wait (`Retry-After`) when the queue is full.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// At most `max` password checks (login, register, and any later reauthentication or password
/// change) in progress or waiting at once; one more is answered at once with 503 `busy`. Of
/// those places one client holds at most `per_client` (an IPv4 address, or an IPv6 /64, which
/// one host usually holds whole), so a flood from one client leaves the other places to
/// everyone else; a flood from many addresses still fills the queue and gets 503.
///
/// Argon2id costs tens of milliseconds of CPU per check by design, and the hashing pool runs a
/// few at a time; without a bound, each request of a flood waits its turn, holding its
/// connection and memory, and every genuine login behind it waits as long.
#[derive(Debug, Clone)]
pub struct PasswordQueue {
    slots: Arc<Semaphore>,
    per_client: usize,
    held: Held,
}

/// How many places each client holds.
type Held = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// A place in the [`PasswordQueue`], held until dropped.
#[derive(Debug)]
pub struct QueueSlot {
    _permit: OwnedSemaphorePermit,
    client: Option<(IpAddr, Held)>,
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        if let Some((client, held)) = &self.client {
            give_back(held, *client);
        }
    }
}

/// Gives one of `client`'s places back.
fn give_back(held: &Mutex<HashMap<IpAddr, usize>>, client: IpAddr) {
    let mut held = lock(held);
    if let Some(n) = held.get_mut(&client) {
        *n -= 1;
        if *n == 0 {
            held.remove(&client);
        }
    }
}

fn lock(held: &Mutex<HashMap<IpAddr, usize>>) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
    held.lock().unwrap_or_else(|e| e.into_inner())
}

/// The part of an address that names one client: an IPv4 address, an IPv6 /64.
fn client_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

impl PasswordQueue {
    /// A queue of at most `max` checks (at least 1), at most `per_client` of them (at least 1)
    /// for one client.
    pub fn new(max: usize, per_client: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
            per_client: per_client.max(1),
            held: Arc::default(),
        }
    }

    /// A place in the queue for a check asked for by `client` (its address; `None` when the
    /// server does not know it: then only the overall bound applies), held for the whole check
    /// (take it before any work the check implies: the throttle, the account lookup, the hash).
    ///
    /// # Errors
    /// 503 `busy` with `Retry-After` when the queue is full, or when `client` holds its share.
    pub fn enter(&self, client: Option<IpAddr>) -> Result<QueueSlot, ApiError> {
        let busy = |why: &str| {
            tracing::debug!("password check refused: {why}");
            ApiError::busy(BUSY_RETRY_AFTER_SECS)
        };
        let client = client.map(client_of);
        if let Some(client) = client {
            let mut held = lock(&self.held);
            let n = held.entry(client).or_insert(0);
            if *n >= self.per_client {
                return Err(busy("the client holds its share of the queue"));
            }
            *n += 1;
        }
        let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
            if let Some(client) = client {
                give_back(&self.held, client);
            }
            return Err(busy("the queue is full"));
        };
        Ok(QueueSlot {
            _permit: permit,
            client: client.map(|c| (c, Arc::clone(&self.held))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_refuses_beyond_its_size_and_frees_places_on_drop() {
        let queue = PasswordQueue::new(2, 2);
        let a = queue.enter(None).unwrap();
        let _b = queue.enter(None).unwrap();
        let busy = queue.enter(None).unwrap_err();
        assert_eq!(busy, ApiError::busy(BUSY_RETRY_AFTER_SECS));
        drop(a);
        assert!(queue.enter(None).is_ok());
        assert!(PasswordQueue::new(0, 0).enter(None).is_ok());
    }

    #[test]
    fn one_client_holds_at_most_its_share_and_others_still_get_places() {
        let queue = PasswordQueue::new(4, 2);
        let flooder: IpAddr = "192.0.2.1".parse().unwrap();
        let held: Vec<_> = (0..2)
            .map(|_| queue.enter(Some(flooder)).unwrap())
            .collect();
        assert!(
            queue.enter(Some(flooder)).is_err(),
            "a third place for one client"
        );
        // The same /64 is the same client; another address is not.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        let _c = queue.enter(Some(v6a)).unwrap();
        let _d = queue.enter(Some(v6b)).unwrap();
        assert!(queue.enter(Some(v6a)).is_err() || queue.enter(Some(v6b)).is_err());
        // The queue is full now (4 places): a new client is refused, and its refusal holds
        // nothing of its share.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(queue.enter(Some(other)).is_err());
        drop(held);
        assert!(queue.enter(Some(other)).is_ok());
        assert!(lock(&queue.held).get(&flooder).is_none(), "places leaked");
    }
}
