//! Behind Sentinel, which server the cache tracks and the proof, at every heartbeat, that it is
//! still the primary: the server answers `ROLE` as a primary, and a majority of the sentinels,
//! asked one by one, all name it (`SENTINEL GET-MASTER-ADDR-BY-NAME`). How this keeps the
//! cache from serving an entry once writes may go to another server: `cache.rs`, "Behind
//! Sentinel".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use redis::aio::MultiplexedConnection;
use redis::{Client, ProtocolVersion, RedisResult, Role};

use super::super::conn::Primary;

/// What the sentinels said of the tracked server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A majority of the sentinels answered, and every answer names the tracked server.
    Confirmed,
    /// A sentinel names another server: a failover happened (or is under way).
    Moved,
    /// Fewer than a majority answered in time: nothing is proven either way.
    NoQuorum,
}

/// The cache's side of a Sentinel deployment: the primary as the store knows it
/// ([`Primary`], shared with the store's connections) and a connection to each sentinel.
pub(super) struct Tracking {
    primary: Arc<Primary>,
    sentinels: Vec<Sentinel>,
    /// The epoch of [`Primary`] the tracking connection was made in (with no connection,
    /// nothing is cached, whatever it says).
    epoch: AtomicU64,
}

/// One sentinel, and our connection to it (made when first needed, dropped after a failure).
struct Sentinel {
    client: Client,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Tracking {
    pub(super) fn new(primary: Arc<Primary>) -> RedisResult<Self> {
        let sentinels = primary
            .sentinels()
            .iter()
            .map(|url| {
                Ok(Sentinel {
                    client: Client::open(url.as_str())?,
                    conn: tokio::sync::Mutex::new(None),
                })
            })
            .collect::<RedisResult<_>>()?;
        Ok(Self {
            primary,
            sentinels,
            epoch: AtomicU64::new(0),
        })
    }

    /// A RESP3 client for the primary the sentinels name now (recorded in [`Primary`], which
    /// may move its epoch), its address and the epoch it was named in.
    pub(super) async fn client(&self) -> RedisResult<(Client, (String, u16), u64)> {
        let (client, addr, epoch) = self.primary.resolve().await?;
        let info = client.get_connection_info().clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        Ok((Client::open(info.set_redis_settings(resp3))?, addr, epoch))
    }

    /// The tracking connection made in `epoch` is now the live one.
    pub(super) fn made_in(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    /// Whether the store's connections still go where the tracking connection goes: no
    /// connection of the store has been made to another server since.
    pub(super) fn current(&self) -> bool {
        self.primary.epoch() == self.epoch.load(Ordering::SeqCst)
    }

    /// Asks every sentinel, at once, which server is the primary, each within `limit`.
    pub(super) async fn ask_sentinels(&self, tracked: &(String, u16), limit: Duration) -> Verdict {
        let service = self.primary.service();
        let answers = join_all(
            self.sentinels
                .iter()
                .map(|s| tokio::time::timeout(limit, s.primary_of(service))),
        )
        .await;
        let mut answered = 0;
        for answer in answers {
            match answer {
                Ok(Some(named)) if &named == tracked => answered += 1,
                Ok(Some(_)) => return Verdict::Moved,
                _ => {}
            }
        }
        if answered > self.sentinels.len() / 2 {
            Verdict::Confirmed
        } else {
            Verdict::NoQuorum
        }
    }
}

impl Sentinel {
    /// The primary this sentinel names for `service`; `None` when it does not answer (or
    /// knows no such service).
    async fn primary_of(&self, service: &str) -> Option<(String, u16)> {
        let mut slot = self.conn.lock().await;
        let mut conn = match slot.as_ref() {
            Some(conn) => conn.clone(),
            None => {
                let conn = self.client.get_multiplexed_async_connection().await.ok()?;
                *slot = Some(conn.clone());
                conn
            }
        };
        let named: RedisResult<Option<(String, u16)>> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(service)
            .query_async(&mut conn)
            .await;
        match named {
            Ok(named) => named,
            Err(_) => {
                // Connect again next time.
                *slot = None;
                None
            }
        }
    }
}

/// Whether a `ROLE` answer is a primary's.
pub(super) fn is_primary(role: &Role) -> bool {
    matches!(role, Role::Primary { .. })
}
