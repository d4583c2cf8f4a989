//! A `redis-server` of the test's own: started from `PATH` on a free port with a temporary
//! directory, killed when dropped. With `REDIS_URL` set, [`RedisServer::start`] uses that
//! server instead.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::node::{os_args, Node};

/// How to get `redis-server`, for error messages.
pub const INSTALL_HINT: &str = "install it with `sudo apt-get install redis-server` \
     (Debian/Ubuntu) or `brew install redis` (macOS), or set REDIS_URL to a server the tests may \
     write to";

/// The harness could not provide a Redis server. The message says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HarnessError(pub(crate) String);

/// A Redis server for one test.
#[derive(Debug)]
pub struct RedisServer {
    url: String,
    port: u16,
    node: Option<Node>,
    dir: Option<tempfile::TempDir>,
}

/// The arguments of a plain, non-persistent server on `port`.
fn server_args(port: u16) -> Vec<OsString> {
    os_args(&[
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
    ])
}

impl RedisServer {
    /// The server at `REDIS_URL` if that is set, else a new local one (see
    /// [`RedisServer::start_local`]).
    ///
    /// # Errors
    /// [`HarnessError`] saying how to install `redis-server` when it is not on `PATH`.
    pub fn start() -> Result<Self, HarnessError> {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => Ok(Self {
                url,
                port: 0,
                node: None,
                dir: None,
            }),
            _ => Self::start_local(),
        }
    }

    /// Always a new `redis-server` process of this test's own (tests that kill and restart the
    /// server use this even when `REDIS_URL` is set).
    ///
    /// # Errors
    /// [`HarnessError`] saying how to install `redis-server` when it is not on `PATH`, or why it
    /// did not start.
    pub fn start_local() -> Result<Self, HarnessError> {
        let dir = tempfile::tempdir()
            .map_err(|e| HarnessError(format!("cannot create a temp dir for redis-server: {e}")))?;
        let node = Node::start(dir.path(), "redis-server", |port, _| Ok(server_args(port)))?;
        Ok(Self {
            url: format!("redis://127.0.0.1:{}", node.port),
            port: node.port,
            node: Some(node),
            dir: Some(dir),
        })
    }

    /// `redis://127.0.0.1:PORT` (or `REDIS_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port of a local server (0 for `REDIS_URL`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True when this is a server of the test's own (not `REDIS_URL`).
    pub fn is_local(&self) -> bool {
        self.dir.is_some()
    }

    /// Kills a local server with SIGKILL and waits for it to exit (a crash, not a shutdown).
    pub fn kill(&mut self) {
        if let Some(node) = self.node.as_mut() {
            node.kill();
        }
    }

    /// Freezes a local server (SIGSTOP): it keeps its connections but answers nothing, like a
    /// hung or overloaded Redis. [`RedisServer::resume`] undoes it.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.node.as_ref().and_then(Node::pid) {
            let _ = Command::new("kill").arg(sig).arg(pid.to_string()).status();
        }
    }

    /// Starts a local server again on the same port (after [`RedisServer::kill`]). It comes back
    /// empty: nothing is persisted.
    ///
    /// # Errors
    /// [`HarnessError`] when it does not come back, or for a `REDIS_URL` server.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill();
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| HarnessError("cannot restart the server at REDIS_URL".to_owned()))?
            .path()
            .join(format!("node-{}", self.port));
        // The port may linger for a moment after the kill.
        let mut last = HarnessError("not started".to_owned());
        for _ in 0..50 {
            match Node::start_at(
                self.port,
                dir.clone(),
                "redis-server",
                &server_args(self.port),
            ) {
                Ok(node) => {
                    self.node = Some(node);
                    return Ok(());
                }
                Err((_, e)) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(last)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

pub(crate) fn ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}
