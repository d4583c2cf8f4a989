//! A throwaway Redis Cluster for tests: `redis-server` processes of the test's own on free
//! ports, joined with `redis-cli --cluster create`, killed when dropped.
//!
//! ```no_run
//! # fn demo() -> Result<(), redis_harness::HarnessError> {
//! use std::time::Duration;
//! use redis_harness::RedisCluster;
//!
//! let mut cluster = RedisCluster::start(3, 1)?;
//! let seeds = cluster.urls(); // give these to a cluster client
//! let owner = cluster.primary_for_key(b"session:{abc}").expect("slot is served");
//! cluster.kill_node(owner)?;
//! let promoted = cluster.wait_for_failover(owner, Duration::from_secs(20))?;
//! # let _ = (seeds, promoted); Ok(()) }
//! ```
//!
//! # Timings
//!
//! Every node runs with `cluster-node-timeout 1000`: a primary that stops answering is
//! suspected after one second and marked failed as soon as a majority of primaries agree
//! (gossip spreads that within a fraction of the timeout). Its replica then waits
//! 500 ms + a random 0–500 ms (+ 1 s per rank for further replicas) before asking for votes, so
//! a failover usually completes 2–4 s after the kill. `cluster-replica-validity-factor 0` lets a
//! replica fail over however long it has been cut off, so the outcome does not depend on how
//! the test's timing falls. `cluster-allow-reads-when-down no` (the default, set explicitly)
//! makes a node refuse reads while the cluster is down instead of serving maybe-stale data.
//! `repl-diskless-sync-delay 0` starts a replica's first full sync at once; Redis 7 otherwise
//! waits 5 s for more replicas to join the same transfer, which would add 5 s to every start.
//! The 30 s start-up limit and the caller's failover limit are upper bounds for slow CI
//! machines; every wait polls (every 50 ms) and returns as soon as the condition holds.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::node::{
    check_field, info_text, os_args, poll, query, role, strip_ansi, tail, wait_for_offsets, Node,
    Role,
};
use crate::ports::free_port;
use crate::redis_server::{HarnessError, INSTALL_HINT};

/// `(first slot, last slot, owner port)` ranges, sorted.
type SlotOwners = Vec<(i64, i64, u16)>;

/// How many hash slots a Redis Cluster has.
const SLOTS: usize = 16384;

/// How long [`RedisCluster::start`] waits for the cluster to agree it is healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `redis-cli --cluster create` may take (it polls the nodes once a second until they
/// all agree on the configuration; that normally takes 1–3 s).
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// One node of a [`RedisCluster`], as [`RedisCluster::nodes`] sees it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node's client port on 127.0.0.1.
    pub port: u16,
    /// What the node says it is (`ROLE`).
    pub role: NodeRole,
}

/// The role of a cluster node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// A primary (it may own no slots if it was demoted and came back).
    Primary,
    /// A replica of the primary on port `primary`.
    Replica {
        /// The client port of the primary it replicates.
        primary: u16,
    },
    /// Killed with [`RedisCluster::kill_node`], or not answering.
    Down,
}

/// A local Redis Cluster of `redis-server` processes, killed when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Node>,
    /// For each primary killed with [`RedisCluster::kill_node`]: its replicas at the time.
    killed_primaries: HashMap<u16, Vec<u16>>,
    // Declared last so the processes are gone before their directories are removed.
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts `primaries * (1 + replicas_per_primary)` nodes, joins them into one cluster with
    /// `redis-cli --cluster create`, and waits (up to 30 s) until every node reports
    /// `cluster_state:ok`, knows every other node, sees all 16384 slots assigned with the same
    /// owners as the others, and every replica's link to its primary is up.
    ///
    /// # Errors
    /// [`HarnessError`] when `primaries` is below 3 (Redis Cluster's minimum), when
    /// `redis-server` or `redis-cli` is not on `PATH` (saying how to install them), or when the
    /// cluster does not come up (with the tail of the relevant server log).
    pub fn start(primaries: usize, replicas_per_primary: usize) -> Result<Self, HarnessError> {
        if primaries < 3 {
            return Err(HarnessError(format!(
                "a Redis Cluster needs at least 3 primaries, not {primaries}"
            )));
        }
        let total = primaries * (1 + replicas_per_primary);
        let dir = tempfile::tempdir()
            .map_err(|e| HarnessError(format!("cannot create a temp dir for the cluster: {e}")))?;
        let mut nodes = Vec::with_capacity(total);
        for _ in 0..total {
            nodes.push(Node::start(
                dir.path(),
                "cluster node",
                |port, node_dir| {
                    // Redis puts the cluster bus on port + 10000 unless told otherwise, which
                    // is often above 65535 or taken for ephemeral ports; give it a free port.
                    let bus = free_port()?;
                    Ok(os_args(&[
                        "--port",
                        &port.to_string(),
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        &bus.to_string(),
                        "--cluster-config-file",
                        &node_dir
                            .join(format!("nodes-{port}.conf"))
                            .to_string_lossy(),
                        "--cluster-node-timeout",
                        "1000",
                        "--cluster-replica-validity-factor",
                        "0",
                        "--cluster-allow-reads-when-down",
                        "no",
                        "--repl-diskless-sync-delay",
                        "0",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--bind",
                        "127.0.0.1",
                        "--protected-mode",
                        "no",
                    ]))
                },
            )?);
        }
        let mut cluster = Self {
            nodes,
            killed_primaries: HashMap::new(),
            _dir: dir,
        };
        cluster.create(replicas_per_primary)?;
        cluster.wait_until_healthy(primaries * replicas_per_primary)?;
        Ok(cluster)
    }

    /// Runs `redis-cli --cluster create … --cluster-replicas R --cluster-yes`.
    fn create(&mut self, replicas_per_primary: usize) -> Result<(), HarnessError> {
        let out_path = self._dir.path().join("cluster-create.log");
        let out = std::fs::File::create(&out_path)
            .map_err(|e| HarnessError(format!("cannot create {}: {e}", out_path.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| HarnessError(format!("cannot create {}: {e}", out_path.display())))?;
        let mut cmd = Command::new("redis-cli");
        cmd.args(["--cluster", "create"]);
        for node in &self.nodes {
            cmd.arg(format!("127.0.0.1:{}", node.port));
        }
        cmd.args(["--cluster-replicas", &replicas_per_primary.to_string()])
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                HarnessError(format!(
                    "the cluster tests need `redis-cli` on PATH and it is not there; \
                     {INSTALL_HINT} (on Debian/Ubuntu `redis-cli` is in `redis-tools`)"
                ))
            } else {
                HarnessError(format!("cannot run redis-cli --cluster create: {e}"))
            }
        })?;
        let output = || {
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            tail(&strip_ansi(&text), 8)
        };
        let deadline = Instant::now() + CREATE_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(HarnessError(format!(
                        "redis-cli --cluster create exited with {status}:\n{}",
                        output()
                    )))
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HarnessError(format!(
                        "redis-cli --cluster create did not finish within {} s:\n{}",
                        CREATE_TIMEOUT.as_secs(),
                        output()
                    )));
                }
                Err(e) => {
                    let _ = child.kill();
                    return Err(HarnessError(format!(
                        "cannot wait for redis-cli --cluster create: {e}"
                    )));
                }
            }
        }
    }

    fn wait_until_healthy(&self, replicas: usize) -> Result<(), HarnessError> {
        let total = self.nodes.len();
        let result = poll(START_TIMEOUT, || {
            let mut owners: Option<(u16, SlotOwners)> = None;
            let mut replicas_up = 0;
            for node in &self.nodes {
                let port = node.port;
                let info = info_text(port, &["CLUSTER", "INFO"]).map_err(|e| (port, e.0))?;
                check_field(&info, "cluster_state", "ok", port)?;
                check_field(&info, "cluster_slots_assigned", &SLOTS.to_string(), port)?;
                check_field(&info, "cluster_known_nodes", &total.to_string(), port)?;
                let slots = slot_owners(port).map_err(|e| (port, e.0))?;
                match &owners {
                    None => owners = Some((port, slots)),
                    Some((first, seen)) if *seen != slots => {
                        return Err((
                            port,
                            format!("nodes {first} and {port} disagree about the slot owners"),
                        ))
                    }
                    Some(_) => {}
                }
                // Every node must know every replica's primary: the primaries vote in a
                // failover only for a replica they know belongs to the failed primary.
                let known = cluster_nodes(port)
                    .map_err(|e| (port, e.0))?
                    .iter()
                    .filter(|l| l.master_id != "-")
                    .count();
                if known != replicas {
                    return Err((
                        port,
                        format!("node {port} knows {known} of the {replicas} replicas"),
                    ));
                }
                if let Role::Replica { link_up, .. } = role(port).map_err(|e| (port, e.0))? {
                    if !link_up {
                        return Err((port, format!("replica {port} is not linked to its primary")));
                    }
                    replicas_up += 1;
                }
            }
            if replicas_up == replicas {
                Ok(())
            } else {
                Err((
                    self.nodes[0].port,
                    format!("{replicas_up} of {replicas} replicas are set up"),
                ))
            }
        });
        result.map_err(|(port, reason)| {
            self.error_with_log(
                port,
                format!(
                    "the cluster was not healthy within {} s: {reason}",
                    START_TIMEOUT.as_secs()
                ),
            )
        })
    }

    fn error_with_log(&self, port: u16, message: String) -> HarnessError {
        match self.nodes.iter().find(|n| n.port == port) {
            Some(node) => HarnessError(format!(
                "{message}\nlast lines of {}:\n{}",
                node.log.display(),
                node.log_tail(8)
            )),
            None => HarnessError(message),
        }
    }

    /// `redis://127.0.0.1:PORT` of each node that is a primary now (what a cluster client is
    /// given as its seeds). Killed nodes are left out.
    pub fn urls(&self) -> Vec<String> {
        self.nodes()
            .into_iter()
            .filter(|n| n.role == NodeRole::Primary)
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// Every node the cluster was started with, in start order, with its role as the node
    /// reports it now ([`NodeRole::Down`] for killed or unresponsive nodes).
    pub fn nodes(&self) -> Vec<ClusterNode> {
        self.nodes
            .iter()
            .map(|node| ClusterNode {
                port: node.port,
                role: if node.is_killed() {
                    NodeRole::Down
                } else {
                    match role(node.port) {
                        Ok(Role::Primary) => NodeRole::Primary,
                        Ok(Role::Replica { primary, .. }) => NodeRole::Replica { primary },
                        Err(_) => NodeRole::Down,
                    }
                },
            })
            .collect()
    }

    /// The port of the primary that owns `key`'s hash slot (CRC16 of the key, or of its
    /// `{hash tag}`), according to the first live node that answers `CLUSTER SLOTS`. `None`
    /// when no node answers or the slot is unassigned.
    ///
    /// Right after a kill and before the failover this is still the dead primary's port.
    pub fn primary_for_key(&self, key: &[u8]) -> Option<u16> {
        let slot = i64::from(key_slot(key));
        self.live_ports()
            .find_map(|port| slot_owners(port).ok())?
            .into_iter()
            .find(|&(start, end, _)| (start..=end).contains(&slot))
            .map(|(_, _, owner)| owner)
    }

    /// Kills the node on `port` with SIGKILL (a crash, not a shutdown) and waits for the
    /// process to exit. When it is a primary, its replicas at that moment are remembered for
    /// [`RedisCluster::wait_for_failover`].
    ///
    /// # Errors
    /// [`HarnessError`] when no node of this cluster has that port.
    pub fn kill_node(&mut self, port: u16) -> Result<(), HarnessError> {
        let index = self
            .nodes
            .iter()
            .position(|n| n.port == port)
            .ok_or_else(|| HarnessError(format!("no node of this cluster has port {port}")))?;
        if !self.nodes[index].is_killed() {
            if let Ok(replicas) = replicas_of(port) {
                self.killed_primaries.insert(port, replicas);
            }
        }
        self.nodes[index].kill();
        Ok(())
    }

    /// Waits until every replica of the primary on `primary` has received everything that
    /// primary had written when this was called (their `slave_repl_offset` reaches its
    /// `master_repl_offset`). Call it before killing a primary whose writes must survive.
    ///
    /// # Errors
    /// [`HarnessError`] when `primary` is not a live primary of this cluster with replicas, or
    /// a replica does not catch up within `timeout`.
    pub fn wait_for_replication(
        &self,
        primary: u16,
        timeout: Duration,
    ) -> Result<(), HarnessError> {
        if !self.live_ports().any(|p| p == primary) {
            return Err(HarnessError(format!(
                "no live node of this cluster has port {primary}"
            )));
        }
        let replicas: Vec<u16> = self
            .nodes()
            .into_iter()
            .filter(|n| n.role == NodeRole::Replica { primary })
            .map(|n| n.port)
            .collect();
        if replicas.is_empty() {
            return Err(HarnessError(format!(
                "node {primary} is not a primary with replicas"
            )));
        }
        wait_for_offsets(primary, &replicas, timeout).map_err(|(port, reason)| {
            self.error_with_log(
                port,
                format!(
                    "the replicas of {primary} did not catch up within {} ms: {reason}",
                    timeout.as_millis()
                ),
            )
        })
    }

    /// Waits until a replica of the (killed) primary `dead_port` has been promoted and every
    /// surviving node reports `cluster_state:ok` with all slots served by live nodes; returns
    /// the promoted node's port. With the timings above this normally takes 2–4 s; pass a
    /// `timeout` with room for slow machines (15–20 s).
    ///
    /// # Errors
    /// [`HarnessError`] when `dead_port` had no replica, or on timeout (with the tail of a
    /// lagging node's log).
    pub fn wait_for_failover(
        &self,
        dead_port: u16,
        timeout: Duration,
    ) -> Result<u16, HarnessError> {
        let candidates = match self.killed_primaries.get(&dead_port) {
            Some(replicas) => replicas.clone(),
            // Not killed through this harness: ask the survivors who replicated it.
            None => self
                .live_ports()
                .find_map(|port| cluster_nodes(port).ok())
                .map(|lines| {
                    let id = lines
                        .iter()
                        .find(|l| l.port == dead_port)
                        .map(|l| l.id.clone());
                    lines
                        .iter()
                        .filter(|l| id.as_deref() == Some(l.master_id.as_str()))
                        .map(|l| l.port)
                        .collect()
                })
                .unwrap_or_default(),
        };
        if candidates.is_empty() {
            return Err(HarnessError(format!(
                "node {dead_port} was not a primary with replicas, so nothing can take over"
            )));
        }
        let live: Vec<u16> = self.live_ports().collect();
        let result = poll(timeout, || {
            let promoted = candidates
                .iter()
                .copied()
                .filter(|p| live.contains(p))
                .find(|&p| matches!(role(p), Ok(Role::Primary)))
                .ok_or_else(|| {
                    (
                        candidates[0],
                        format!("no replica of {dead_port} ({candidates:?}) is a primary yet"),
                    )
                })?;
            for &port in &live {
                let info = info_text(port, &["CLUSTER", "INFO"]).map_err(|e| (port, e.0))?;
                check_field(&info, "cluster_state", "ok", port)?;
                let owners = slot_owners(port).map_err(|e| (port, e.0))?;
                if let Some(&(start, end, _)) = owners.iter().find(|o| !live.contains(&o.2)) {
                    return Err((
                        port,
                        format!("node {port} still has slots {start}-{end} on a dead node"),
                    ));
                }
            }
            Ok(promoted)
        });
        result.map_err(|(port, reason)| {
            self.error_with_log(
                port,
                format!(
                    "no failover of {dead_port} within {} ms: {reason}",
                    timeout.as_millis()
                ),
            )
        })
    }

    fn live_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes.iter().filter(|n| !n.is_killed()).map(|n| n.port)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

/// The hash slot of `key`: CRC16 (XMODEM) of the key, or of the part between the first `{`
/// and the next `}` when that part is not empty, modulo 16384.
fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS as u16
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// `(first slot, last slot, owner port)` from `CLUSTER SLOTS` on `port`, sorted.
fn slot_owners(port: u16) -> Result<SlotOwners, HarnessError> {
    let bad = || HarnessError(format!("node {port}: unexpected CLUSTER SLOTS reply"));
    let mut owners = Vec::new();
    for range in query(port, &["CLUSTER", "SLOTS"])?
        .into_array()
        .ok_or_else(bad)?
    {
        let mut range = range.into_array().ok_or_else(bad)?.into_iter();
        let (Some(start), Some(end), Some(primary)) = (range.next(), range.next(), range.next())
        else {
            return Err(bad());
        };
        let owner = primary
            .into_array()
            .and_then(|p| p.into_iter().nth(1))
            .and_then(|p| p.as_int())
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(bad)?;
        owners.push((
            start.as_int().ok_or_else(bad)?,
            end.as_int().ok_or_else(bad)?,
            owner,
        ));
    }
    owners.sort_unstable();
    Ok(owners)
}

/// One line of `CLUSTER NODES`.
struct NodeLine {
    id: String,
    port: u16,
    /// The primary's id for a replica, `-` for a primary.
    master_id: String,
}

fn cluster_nodes(port: u16) -> Result<Vec<NodeLine>, HarnessError> {
    let text = info_text(port, &["CLUSTER", "NODES"])?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let id = fields.next()?.to_owned();
            // ip:port@cport[,hostname]
            let addr = fields.next()?;
            let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let _flags = fields.next()?;
            let master_id = fields.next()?.to_owned();
            Some(NodeLine {
                id,
                port,
                master_id,
            })
        })
        .collect())
}

/// The ports of the replicas of the primary on `port`, from its own `CLUSTER NODES`.
fn replicas_of(port: u16) -> Result<Vec<u16>, HarnessError> {
    let lines = cluster_nodes(port)?;
    let text = info_text(port, &["CLUSTER", "MYID"])?;
    let me = text.trim();
    Ok(lines
        .iter()
        .filter(|l| l.master_id == me)
        .map(|l| l.port)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::key_slot;

    #[test]
    fn key_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.0.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b"{user1000}.following"), 3443);
        assert_eq!(key_slot(b"user1000"), 3443);
        // An empty first tag means the whole key is hashed.
        assert_eq!(key_slot(b"foo{}{bar}"), 8363);
        assert_eq!(key_slot(b"foo{{bar}}zap"), 4015);
        assert_eq!(key_slot(b"session:{smoke}"), 3977);
    }
}
