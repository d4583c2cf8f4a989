//! The cache on Redis Cluster: a tracking connection per primary node (a [`NodeCache`] each,
//! on one shared driver thread), and a slot map that says which node a session is read from
//! and cached by.
//!
//! An entry is served only from the cache of the node that the map names as its slot's
//! owner, and only while the map is trusted: every heartbeat (four per staleness bound) asks
//! every primary of the map for its `CLUSTER SLOTS`, and the trust is extended only when each
//! answers exactly the map. Any topology signal empties every node's cache and distrusts the
//! map until a heartbeat proves a new one:
//!
//! - a node answers `MOVED` or `ASK` (a slot moved or is moving): the map is fetched again at
//!   once, and the read is answered from the node redirected to (after `ASK`, with `ASKING`,
//!   untracked), but not kept;
//! - a node's view differs from the map, or a node does not answer a heartbeat;
//! - each node's own heartbeat and each write's barrier ask it `ROLE` (a demoted primary
//!   answers as a replica), and a lost or silent tracking connection empties that node's
//!   cache, as on one server.
//!
//! Why a record cached from a node that no longer owns its slot is never served: a slot
//! changes owner by a migration or a failover. A migration moves each key with `MIGRATE`,
//! which deletes it on the old owner, whose invalidation reaches us before any later reply of
//! that connection; a key not moved yet still lives on the old owner, which is still tracking
//! it. A failover kills or demotes the old owner: its connection drops, or its `ROLE` (at the
//! next barrier or heartbeat) says replica. And the map itself is re-proven against every
//! primary at least once per staleness bound, so a change any node knows of ends the trust
//! within the bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::join_all;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Value};

use super::{resp3, spawn_driver, CacheConfig, Lookup, Meters, NodeCache, Read, Ticket, Tracked};
use crate::error::{Error, Result, UnavailableKind};
use crate::record::{duration_ms, now_ms, Record};
use crate::token::SessionKey;

/// Hash slots of a Redis Cluster.
const SLOTS: usize = 16384;

/// A range of slots (first, last) and its primary (host, port).
type Range = (u16, u16, (String, u16));

/// A ticket of a read that may not fill the cache.
const NO_NODE: usize = usize::MAX;

pub(crate) struct ClusterCache {
    state: Arc<State>,
    /// Dropping it stops the shared driver thread (the nodes' connections and heartbeats).
    _stop: tokio::sync::oneshot::Sender<()>,
}

struct State {
    /// The nodes the store was given (their URLs' settings are used for every node).
    seeds: Vec<ConnectionInfo>,
    config: CacheConfig,
    session_prefix: Vec<u8>,
    operation_timeout: Duration,
    driver: tokio::runtime::Handle,
    meters: Meters,
    map: RwLock<Arc<Map>>,
    /// The map may be used until this moment (ms): last heartbeat at which every primary
    /// agreed with it + the staleness bound.
    trusted_until_ms: AtomicU64,
    refreshing: tokio::sync::Mutex<()>,
}

/// The slot map and a cache per primary.
struct Map {
    /// Changes with every map fetched (a fill is kept only under the map it was read by).
    epoch: u64,
    /// Slot ranges and their primary (host, port), sorted.
    ranges: Vec<Range>,
    /// Per slot, the index of its primary in `nodes` (`u16::MAX`: none).
    owner: Vec<u16>,
    nodes: Vec<Node>,
}

struct Node {
    addr: (String, u16),
    cache: Arc<NodeCache>,
}

impl Map {
    fn empty() -> Self {
        Self {
            epoch: 0,
            ranges: Vec::new(),
            owner: vec![u16::MAX; SLOTS],
            nodes: Vec::new(),
        }
    }

    fn owner_of(&self, key: &[u8]) -> Option<usize> {
        let node = self.owner[slot(key)];
        (node != u16::MAX).then_some(usize::from(node))
    }

    fn node_at(&self, host_port: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| format!("{}:{}", n.addr.0, n.addr.1) == host_port)
    }
}

impl ClusterCache {
    pub(super) fn new(
        nodes: &[String],
        config: CacheConfig,
        session_prefix: Vec<u8>,
        operation_timeout: Duration,
    ) -> Result<Self> {
        let seeds = nodes
            .iter()
            .map(|url| {
                url.as_str()
                    .into_connection_info()
                    .map_err(|e| Error::Config(format!("Redis URL for the session cache: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        if seeds.is_empty() {
            return Err(Error::Config(
                "a Redis Cluster target needs at least one node".into(),
            ));
        }
        let (driver, stop) = spawn_driver()?;
        let state = Arc::new(State {
            seeds,
            config,
            session_prefix,
            operation_timeout,
            driver,
            meters: Meters::new(),
            map: RwLock::new(Arc::new(Map::empty())),
            trusted_until_ms: AtomicU64::new(0),
            refreshing: tokio::sync::Mutex::new(()),
        });
        let weak = Arc::downgrade(&state);
        let every = state.config.staleness_bound / 4;
        state.driver.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(state) = weak.upgrade() else { return };
                state.verify(every * 2).await;
            }
        });
        Ok(Self { state, _stop: stop })
    }

    pub(super) fn lookup(&self, key: &SessionKey, now: u64, idle: u64, touch_every: u64) -> Lookup {
        let state = &self.state;
        let map = state.map();
        let name = [state.session_prefix.as_slice(), key.as_bytes()].concat();
        let trusted = now_ms() < state.trusted_until_ms.load(Ordering::Acquire);
        if let (true, Some(node)) = (trusted, map.owner_of(&name)) {
            let mut found = map.nodes[node].cache.lookup(key, now, idle, touch_every);
            if let Lookup::Miss { ticket } = &mut found {
                ticket.node = node;
                ticket.map = map.epoch;
            }
            return found;
        }
        state.meters.miss();
        Lookup::Miss {
            ticket: Ticket {
                shard: 0,
                seen: 0,
                node: NO_NODE,
                map: map.epoch,
            },
        }
    }

    pub(super) fn fill(
        &self,
        key: SessionKey,
        ticket: Ticket,
        record: Arc<Record>,
        expires_ms: u64,
        stored_len: usize,
    ) {
        let map = self.state.map();
        if ticket.node == NO_NODE
            || ticket.map != map.epoch
            || now_ms() >= self.state.trusted_until_ms.load(Ordering::Acquire)
        {
            return;
        }
        if let Some(node) = map.nodes.get(ticket.node) {
            node.cache.fill(key, ticket, record, expires_ms, stored_len);
        }
    }

    pub(super) fn forget(&self, key: &SessionKey) {
        for node in &self.state.map().nodes {
            node.cache.forget(key);
        }
    }

    /// Reads `session_key` for a miss on its slot's primary; after `MOVED` or `ASK`, from the
    /// node redirected to, and then not to be kept (the map's epoch moved: the fill is
    /// refused).
    pub(super) async fn read(&self, target: &str, session_key: &[u8]) -> Result<Read> {
        let map = self.state.map_or_fetch(target).await?;
        let node = owner(&map, session_key, target)?;
        match node.cache.read_redirectable(target, session_key).await {
            Ok(read) => Ok(read),
            Err(failed) => match failed.redirect {
                None => Err(failed.error),
                Some(redirect) => {
                    let map = self.state.changed(target).await?;
                    let to = redirected(&map, &redirect.to, target)?;
                    if redirect.ask {
                        to.cache.read_asking(target, session_key).await
                    } else {
                        to.cache.read(target, session_key).await
                    }
                }
            },
        }
    }

    /// Slides the idle expiry of `session_key` on its slot's primary (following a redirect).
    pub(super) async fn touch(&self, target: &str, session_key: &[u8], idle: u64) -> Result<bool> {
        let map = self.state.map_or_fetch(target).await?;
        let node = owner(&map, session_key, target)?;
        match node
            .cache
            .touch_redirectable(target, session_key, idle)
            .await
        {
            Ok(slid) => Ok(slid),
            Err(failed) => match failed.redirect {
                None => Err(failed.error),
                Some(redirect) => {
                    let map = self.state.changed(target).await?;
                    let to = redirected(&map, &redirect.to, target)?;
                    if redirect.ask {
                        to.cache.touch_asking(target, session_key, idle).await
                    } else {
                        to.cache.touch(target, session_key, idle).await
                    }
                }
            },
        }
    }

    /// Every primary's barrier (`ROLE`), at once: a write may have reached any of them.
    pub(super) async fn barrier(&self, target: &str) -> Result<()> {
        let map = self.state.map();
        let done = join_all(map.nodes.iter().map(|n| n.cache.barrier(target))).await;
        done.into_iter().collect::<Result<Vec<()>>>().map(|_| ())
    }
}

/// The node that owns `key`'s slot in `map`.
fn owner<'a>(map: &'a Map, key: &[u8], target: &str) -> Result<&'a Node> {
    map.owner_of(key)
        .and_then(|n| map.nodes.get(n))
        .ok_or_else(|| {
            Error::unavailable(
                UnavailableKind::Server,
                format!("Redis at {target} (session cache): no primary owns the key's slot"),
            )
        })
}

/// The node a redirect names, in the map fetched after it.
fn redirected<'a>(map: &'a Map, to: &str, target: &str) -> Result<&'a Node> {
    map.node_at(to).ok_or_else(|| {
        Error::unavailable(
            UnavailableKind::Server,
            format!("Redis at {target} (session cache): redirected to {to}, not a known primary"),
        )
    })
}

impl State {
    fn map(&self) -> Arc<Map> {
        Arc::clone(&self.map.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The map, fetched first if there is none yet.
    async fn map_or_fetch(&self, target: &str) -> Result<Arc<Map>> {
        let map = self.map();
        if !map.nodes.is_empty() {
            return Ok(map);
        }
        self.refresh(map.epoch, target).await
    }

    /// The topology changed: nothing cached is served, and the map is fetched again.
    async fn changed(&self, target: &str) -> Result<Arc<Map>> {
        let map = self.map();
        self.distrust(&map);
        self.refresh(map.epoch, target).await
    }

    fn distrust(&self, map: &Map) {
        self.trusted_until_ms.store(0, Ordering::Release);
        for node in &map.nodes {
            node.cache.flush();
        }
    }

    /// Fetches the slot map (unless another caller did since `seen`), keeping the caches of
    /// the primaries it still names, emptied. The new map is not trusted until a heartbeat
    /// finds every primary agreeing with it.
    async fn refresh(&self, seen: u64, target: &str) -> Result<Arc<Map>> {
        let _one = self.refreshing.lock().await;
        let old = self.map();
        if old.epoch != seen && !old.nodes.is_empty() {
            return Ok(old);
        }
        let ranges = tokio::time::timeout(self.operation_timeout, self.fetch_ranges(&old))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                Error::unavailable(
                    UnavailableKind::Connection,
                    format!("Redis at {target} (session cache): no node answered CLUSTER SLOTS"),
                )
            })?;
        let mut nodes: Vec<Node> = Vec::new();
        let mut owner = vec![u16::MAX; SLOTS];
        let primaries = {
            let mut p: Vec<&(String, u16)> = ranges.iter().map(|(_, _, a)| a).collect();
            p.sort();
            p.dedup();
            p.len().max(1)
        };
        let config = CacheConfig {
            max_entries: self.config.max_entries.div_ceil(primaries).max(1),
            max_bytes: self.config.max_bytes / primaries,
            staleness_bound: self.config.staleness_bound,
        };
        for (start, end, addr) in &ranges {
            let index = match nodes.iter().position(|n| &n.addr == addr) {
                Some(i) => i,
                None => {
                    let cache = match old.nodes.iter().find(|n| &n.addr == addr) {
                        Some(kept) => Arc::clone(&kept.cache),
                        None => Arc::new(self.node_cache(addr, config.clone())?),
                    };
                    nodes.push(Node {
                        addr: addr.clone(),
                        cache,
                    });
                    nodes.len() - 1
                }
            };
            let index = u16::try_from(index).unwrap_or(u16::MAX);
            for slot in *start..=*end {
                if let Some(o) = owner.get_mut(usize::from(slot)) {
                    *o = index;
                }
            }
        }
        let map = Arc::new(Map {
            epoch: old.epoch + 1,
            ranges,
            owner,
            nodes,
        });
        self.trusted_until_ms.store(0, Ordering::Release);
        for node in &map.nodes {
            node.cache.flush();
        }
        *self.map.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&map);
        Ok(map)
    }

    /// `CLUSTER SLOTS` from the first node that answers: the map's primaries, then the seeds.
    async fn fetch_ranges(&self, old: &Map) -> Option<Vec<Range>> {
        let cmd = cluster_slots();
        for node in &old.nodes {
            let described = format!("{}:{}", node.addr.0, node.addr.1);
            if let Ok(v) = node.cache.query::<Value>(&described, &cmd).await {
                if let Some(ranges) = parse_slots(&v, &node.addr.0) {
                    return Some(ranges);
                }
            }
        }
        for seed in &self.seeds {
            let Ok(client) = redis::Client::open(seed.clone()) else {
                continue;
            };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                continue;
            };
            let host = match seed.addr() {
                ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => host.clone(),
                _ => String::new(),
            };
            if let Ok(v) = cmd.query_async::<Value>(&mut conn).await {
                if let Some(ranges) = parse_slots(&v, &host) {
                    return Some(ranges);
                }
            }
        }
        None
    }

    /// A cache for the primary at `addr`, with the seeds' settings, on the shared driver.
    fn node_cache(&self, addr: &(String, u16), config: CacheConfig) -> Result<NodeCache> {
        let seed = self.seeds.first().cloned().ok_or_else(|| {
            Error::Config("a Redis Cluster target needs at least one node".into())
        })?;
        let tls = matches!(seed.addr(), ConnectionAddr::TcpTls { .. });
        let info = match seed.addr().clone() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } if tls => seed.set_addr(ConnectionAddr::TcpTls {
                host: addr.0.clone(),
                port: addr.1,
                insecure,
                tls_params,
            }),
            _ => seed.set_addr(ConnectionAddr::Tcp(addr.0.clone(), addr.1)),
        };
        NodeCache::new(
            Tracked::Node(resp3(info)?),
            Some((self.driver.clone(), self.meters.clone())),
            config,
            self.session_prefix.clone(),
            self.operation_timeout,
        )
    }

    /// One heartbeat of the map: every primary's `CLUSTER SLOTS` must be the map, else
    /// nothing is served and the map is fetched again.
    async fn verify(&self, limit: Duration) {
        let map = self.map();
        if map.nodes.is_empty() {
            let _ = tokio::time::timeout(limit, self.refresh(map.epoch, "cluster")).await;
            return;
        }
        let sent = now_ms();
        let cmd = cluster_slots();
        let views = join_all(map.nodes.iter().map(|node| {
            let described = format!("{}:{}", node.addr.0, node.addr.1);
            let cmd = &cmd;
            async move {
                let v = tokio::time::timeout(limit, node.cache.query::<Value>(&described, cmd))
                    .await
                    .ok()?
                    .ok()?;
                parse_slots(&v, &node.addr.0)
            }
        }))
        .await;
        let agreed = views.iter().all(|view| view.as_ref() == Some(&map.ranges));
        if agreed && self.map().epoch == map.epoch {
            self.trusted_until_ms.store(
                sent + duration_ms(self.config.staleness_bound),
                Ordering::Release,
            );
        } else {
            self.distrust(&map);
            let _ = tokio::time::timeout(limit, self.refresh(map.epoch, "cluster")).await;
        }
    }
}

fn cluster_slots() -> redis::Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    cmd
}

/// The primaries' slot ranges in a `CLUSTER SLOTS` answer, sorted; a primary without a host
/// is the answering node (`answered_by`).
fn parse_slots(v: &Value, answered_by: &str) -> Option<Vec<Range>> {
    let Value::Array(entries) = v else {
        return None;
    };
    let mut ranges = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(items) = entry else {
            return None;
        };
        let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(primary))) =
            (items.first(), items.get(1), items.get(2))
        else {
            return None;
        };
        let host = match primary.first()? {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok()?,
            Value::SimpleString(s) => s.clone(),
            _ => return None,
        };
        let host = if host.is_empty() || host == "?" {
            answered_by.to_owned()
        } else {
            host
        };
        let Some(Value::Int(port)) = primary.get(1) else {
            return None;
        };
        ranges.push((
            u16::try_from(*start).ok()?,
            u16::try_from(*end).ok()?,
            (host, u16::try_from(*port).ok()?),
        ));
    }
    ranges.sort();
    Some(ranges)
}

/// The hash slot of a key: CRC16 (XMODEM) of the key, or of its hash tag (the bytes between
/// the first `{` and the next `}`, when not empty), modulo 16384.
fn slot(key: &[u8]) -> usize {
    let hashed = key
        .iter()
        .position(|b| *b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|b| *b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    usize::from(crc16::State::<crc16::XMODEM>::calculate(hashed)) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slots redis-rs routes a cluster command by (its `Slot` shows its number only in
    /// `Debug`), hash tags included.
    #[test]
    fn slots_are_the_slots_redis_rs_routes_by() {
        let mut keys: Vec<Vec<u8>> = [
            &b"foo"[..],
            b"{user1000}.following",
            b"foo{}{bar}",
            b"foo{{bar}}zap",
            b"foo{bar}{zap}",
            b"{",
            b"}{",
            b"",
        ]
        .iter()
        .map(|k| k.to_vec())
        .collect();
        // Session keys: a prefix and 16 raw bytes, which may hold `{` and `}`.
        for i in 0..2000u32 {
            let mut key = b"sess:s:".to_vec();
            key.extend((0..16u32).map(|j| (i.wrapping_mul(2654435761) >> (j % 24)) as u8));
            keys.push(key);
        }
        for key in keys {
            assert_eq!(
                format!("Slot({})", slot(&key)),
                format!("{:?}", redis::cluster_routing::Slot::for_key(&key)),
                "{key:?}"
            );
        }
    }
}
