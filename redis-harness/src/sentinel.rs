//! A throwaway Sentinel-managed primary with a replica, for tests: two data `redis-server`s
//! and three sentinels of the test's own on free ports, killed when dropped.
//!
//! ```no_run
//! # fn demo() -> Result<(), redis_harness::HarnessError> {
//! use std::time::Duration;
//! use redis_harness::RedisSentinelGroup;
//!
//! let mut group = RedisSentinelGroup::start("sessions")?;
//! let sentinels = group.sentinel_urls(); // give these and `group.service()` to the client
//! group.wait_for_replication(Duration::from_secs(5))?;
//! let old = group.kill_primary()?;
//! let new = group.wait_for_failover(old, Duration::from_secs(20))?;
//! # let _ = (sentinels, new); Ok(()) }
//! ```
//!
//! # Timings
//!
//! The sentinels run with `down-after-milliseconds 1000` (a primary that has not answered for
//! one second is subjectively down; sentinels ping every second), quorum 2 of 3 (so one slow
//! sentinel cannot hold up the decision, and the two others still agree), and
//! `failover-timeout 3000` (a failover attempt that stalls is abandoned and retried after
//! twice that, instead of the default three minutes). Sentinels find each other through hello
//! messages every 2 s, so start-up takes 2–4 s; a failover, with the leader election's random
//! start delay of up to 1 s, usually completes 2–5 s after the kill. The data nodes run with
//! `repl-diskless-sync-delay 0`: Redis 7 otherwise waits 5 s before a replica's first full
//! sync (hoping more replicas join the transfer), which would add 5 s to every start. The 30 s start-up limit
//! and the caller's limits are upper bounds for slow CI machines; every wait polls (every
//! 50 ms) and returns as soon as the condition holds.

use std::collections::HashMap;
use std::time::Duration;

use crate::node::{
    check_field, info_text, os_args, poll, query, role, wait_for_offsets, Node, Reply, Role,
};
use crate::redis_server::HarnessError;

/// How long [`RedisSentinelGroup::start`] waits for replication and sentinel discovery.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A local primary, one replica and three sentinels monitoring them, killed when dropped.
#[derive(Debug)]
pub struct RedisSentinelGroup {
    service: String,
    /// The two data nodes: started as primary and as replica.
    data: Vec<Node>,
    sentinels: Vec<Node>,
    /// The primary as of the start or the last [`RedisSentinelGroup::wait_for_failover`], for
    /// when no sentinel answers.
    primary: u16,
    // Declared last so the processes are gone before their directories are removed.
    _dir: tempfile::TempDir,
}

impl RedisSentinelGroup {
    /// Starts a primary, a replica of it (`--replicaof`), and three sentinels monitoring it as
    /// `service` with quorum 2, then waits (up to 30 s) until the replica's link is up and each
    /// sentinel knows the replica and the two other sentinels.
    ///
    /// # Errors
    /// [`HarnessError`] when `service` is empty or contains whitespace, when `redis-server` is
    /// not on `PATH` (saying how to install it), or when the group does not come up (with the
    /// tail of the relevant log).
    pub fn start(service: &str) -> Result<Self, HarnessError> {
        if service.is_empty() || service.chars().any(char::is_whitespace) {
            return Err(HarnessError(format!(
                "a sentinel service name must be one word, not {service:?}"
            )));
        }
        let dir = tempfile::tempdir().map_err(|e| {
            HarnessError(format!(
                "cannot create a temp dir for the sentinel group: {e}"
            ))
        })?;
        let data_args = |port: u16| {
            os_args(&[
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                // Sync a replica at once, not after Redis 7's default 5 s wait for others.
                "--repl-diskless-sync-delay",
                "0",
            ])
        };
        let primary = Node::start(dir.path(), "primary", |port, _| Ok(data_args(port)))?;
        let primary_port = primary.port;
        let replica = Node::start(dir.path(), "replica", |port, _| {
            let mut args = data_args(port);
            args.extend(os_args(&[
                "--replicaof",
                "127.0.0.1",
                &primary_port.to_string(),
            ]));
            Ok(args)
        })?;
        let mut group = Self {
            service: service.to_owned(),
            data: vec![primary, replica],
            sentinels: Vec::new(),
            primary: primary_port,
            _dir: dir,
        };
        // Sentinels learn about replicas from the primary's INFO, which they read on connect and
        // then only every 10 s: start them once the replica is attached, so they see it at once.
        let replica_port = group.data[1].port;
        poll(START_TIMEOUT, || {
            let info = info_text(replica_port, &["INFO", "replication"])
                .map_err(|e| (replica_port, e.0))?;
            check_field(&info, "master_link_status", "up", replica_port)
        })
        .map_err(|(port, reason)| group.error_with_log(port, start_timeout(&reason)))?;

        for _ in 0..3 {
            let sentinel = Node::start(group._dir.path(), "sentinel", |port, dir| {
                // Sentinel rewrites its config file (its id, the others it found, failovers),
                // so each one gets a writable file of its own.
                let conf = dir.join("sentinel.conf");
                let text = format!(
                    "port {port}\n\
                     bind 127.0.0.1\n\
                     protected-mode no\n\
                     sentinel monitor {service} 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds {service} 1000\n\
                     sentinel failover-timeout {service} 3000\n\
                     sentinel parallel-syncs {service} 1\n"
                );
                std::fs::write(&conf, text)
                    .map_err(|e| HarnessError(format!("cannot write {}: {e}", conf.display())))?;
                let mut args = vec![conf.into_os_string()];
                args.extend(os_args(&["--sentinel"]));
                Ok(args)
            })?;
            group.sentinels.push(sentinel);
        }

        poll(START_TIMEOUT, || {
            for sentinel in &group.sentinels {
                let port = sentinel.port;
                let replicas =
                    sentinel_entries(port, "REPLICAS", service).map_err(|e| (port, e.0))?;
                let replica_str = replica_port.to_string();
                if !replicas.iter().any(|r| r.get("port") == Some(&replica_str)) {
                    return Err((
                        port,
                        format!("sentinel {port} does not know the replica yet"),
                    ));
                }
                let others =
                    sentinel_entries(port, "SENTINELS", service).map_err(|e| (port, e.0))?;
                if others.len() != 2 {
                    return Err((
                        port,
                        format!(
                            "sentinel {port} knows {} of the 2 other sentinels",
                            others.len()
                        ),
                    ));
                }
            }
            Ok(())
        })
        .map_err(|(port, reason)| group.error_with_log(port, start_timeout(&reason)))?;
        Ok(group)
    }

    fn error_with_log(&self, port: u16, message: String) -> HarnessError {
        match self
            .data
            .iter()
            .chain(&self.sentinels)
            .find(|n| n.port == port)
        {
            Some(node) => HarnessError(format!(
                "{message}\nlast lines of {}:\n{}",
                node.log.display(),
                node.log_tail(8)
            )),
            None => HarnessError(message),
        }
    }

    /// `redis://127.0.0.1:PORT` of each sentinel (what a Sentinel client is given, with
    /// [`RedisSentinelGroup::service`]).
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}", s.port))
            .collect()
    }

    /// The name the sentinels monitor the primary under.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The port of the current primary according to `SENTINEL GET-MASTER-ADDR-BY-NAME` on the
    /// first sentinel that answers (the last known one if none does).
    pub fn primary_port(&self) -> u16 {
        self.sentinels
            .iter()
            .filter(|s| !s.is_killed())
            .find_map(|s| self.primary_by(s.port).ok())
            .unwrap_or(self.primary)
    }

    /// The port of the data node that is not the current primary: the replica, or after a
    /// failover the old primary (down until something restarts it).
    pub fn replica_port(&self) -> u16 {
        let primary = self.primary_port();
        self.data
            .iter()
            .map(|n| n.port)
            .find(|&p| p != primary)
            .unwrap_or(primary)
    }

    /// Waits until the replica has received everything the primary had written when this was
    /// called (its `slave_repl_offset` reaches the primary's `master_repl_offset`).
    ///
    /// # Errors
    /// [`HarnessError`] when the primary does not answer or the replica does not catch up
    /// within `timeout`.
    pub fn wait_for_replication(&self, timeout: Duration) -> Result<(), HarnessError> {
        let primary = self.primary_port();
        wait_for_offsets(primary, &[self.replica_port()], timeout).map_err(|(port, reason)| {
            self.error_with_log(
                port,
                format!(
                    "the replica did not catch up within {} ms: {reason}",
                    timeout.as_millis()
                ),
            )
        })
    }

    /// Kills the current primary (per [`RedisSentinelGroup::primary_port`]) with SIGKILL and
    /// waits for the process to exit; returns its port.
    ///
    /// # Errors
    /// [`HarnessError`] when the sentinels name a primary that is not one of this group's
    /// processes.
    pub fn kill_primary(&mut self) -> Result<u16, HarnessError> {
        let port = self.primary_port();
        let node = self
            .data
            .iter_mut()
            .find(|n| n.port == port)
            .ok_or_else(|| {
                HarnessError(format!(
                    "the sentinels name {port} as primary, not a node of ours"
                ))
            })?;
        node.kill();
        Ok(port)
    }

    /// Waits until every live sentinel reports the same primary, other than `old_port`, and
    /// that node answers `ROLE` as master; returns its port. With the timings above this
    /// normally takes 2–5 s; pass a `timeout` with room for slow machines (15–20 s).
    ///
    /// # Errors
    /// [`HarnessError`] on timeout, with the tail of a lagging node's log.
    pub fn wait_for_failover(
        &mut self,
        old_port: u16,
        timeout: Duration,
    ) -> Result<u16, HarnessError> {
        let result = poll(timeout, || {
            let mut agreed = None;
            for sentinel in self.sentinels.iter().filter(|s| !s.is_killed()) {
                let port = self
                    .primary_by(sentinel.port)
                    .map_err(|e| (sentinel.port, e.0))?;
                if port == old_port {
                    return Err((
                        sentinel.port,
                        format!("sentinel {} still names {old_port}", sentinel.port),
                    ));
                }
                match agreed {
                    None => agreed = Some(port),
                    Some(other) if other != port => {
                        return Err((
                            sentinel.port,
                            format!("sentinels name both {other} and {port}"),
                        ))
                    }
                    Some(_) => {}
                }
            }
            let port = agreed.ok_or_else(|| (old_port, "no sentinel is running".to_owned()))?;
            match role(port) {
                Ok(Role::Primary) => Ok(port),
                Ok(Role::Replica { .. }) => Err((port, format!("{port} is still a replica"))),
                Err(e) => Err((port, e.0)),
            }
        });
        match result {
            Ok(port) => {
                self.primary = port;
                Ok(port)
            }
            Err((port, reason)) => Err(self.error_with_log(
                port,
                format!(
                    "no failover from {old_port} within {} ms: {reason}",
                    timeout.as_millis()
                ),
            )),
        }
    }

    fn primary_by(&self, sentinel: u16) -> Result<u16, HarnessError> {
        let reply = query(
            sentinel,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", &self.service],
        )?;
        reply
            .into_array()
            .and_then(|addr| addr.into_iter().nth(1))
            .and_then(|port| port.as_int())
            .and_then(|port| u16::try_from(port).ok())
            .ok_or_else(|| {
                HarnessError(format!(
                    "sentinel {sentinel} has no primary address for {}",
                    self.service
                ))
            })
    }
}

impl Drop for RedisSentinelGroup {
    fn drop(&mut self) {
        // Sentinels first, so none of them reconfigures anything while the data nodes go.
        for node in self.sentinels.iter_mut().chain(&mut self.data) {
            node.kill();
        }
    }
}

fn start_timeout(reason: &str) -> String {
    format!(
        "the sentinel group was not ready within {} s: {reason}",
        START_TIMEOUT.as_secs()
    )
}

/// `SENTINEL <what> <service>` (REPLICAS, SENTINELS) as field maps.
fn sentinel_entries(
    port: u16,
    what: &str,
    service: &str,
) -> Result<Vec<HashMap<String, String>>, HarnessError> {
    let bad = || HarnessError(format!("sentinel {port}: unexpected SENTINEL {what} reply"));
    query(port, &["SENTINEL", what, service])?
        .into_array()
        .ok_or_else(bad)?
        .into_iter()
        .map(|entry| {
            let fields = entry.into_array().ok_or_else(bad)?;
            let mut map = HashMap::new();
            let mut fields = fields.into_iter().map(Reply::into_text);
            while let (Some(Some(k)), Some(Some(v))) = (fields.next(), fields.next()) {
                map.insert(k, v);
            }
            Ok(map)
        })
        .collect()
}
