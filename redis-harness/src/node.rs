//! What the cluster and sentinel harnesses share: a `redis-server` process of the test's own
//! ([`Node`]), polling with a deadline, and a tiny RESP client for the
//! few commands the harnesses send (`ROLE`, `INFO`, `CLUSTER ...`, `SENTINEL ...`).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::redis_server::{ping, HarnessError, INSTALL_HINT};

/// What `ROLE` says.
pub(crate) enum Role {
    /// A primary.
    Primary,
    /// A replica of the primary on `primary`; `link_up` once the sync is done.
    Replica { primary: u16, link_up: bool },
}

pub(crate) fn role(port: u16) -> Result<Role, HarnessError> {
    let bad = || HarnessError(format!("node {port}: unexpected ROLE reply"));
    let mut items = query(port, &["ROLE"])?
        .into_array()
        .ok_or_else(bad)?
        .into_iter();
    match items.next().and_then(Reply::into_text).as_deref() {
        Some("master") => Ok(Role::Primary),
        Some("slave") => {
            let _host = items.next();
            let primary = items
                .next()
                .and_then(|p| p.as_int())
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(bad)?;
            let state = items.next().and_then(Reply::into_text).unwrap_or_default();
            Ok(Role::Replica {
                primary,
                link_up: state == "connected",
            })
        }
        _ => Err(bad()),
    }
}

/// The value of `field` in an `INFO`-style `field:value` text.
pub(crate) fn info_field<'a>(text: &'a str, field: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// `Err((port, why))` unless `field` is `want` in `text`.
pub(crate) fn check_field(
    text: &str,
    field: &str,
    want: &str,
    port: u16,
) -> Result<(), (u16, String)> {
    match info_field(text, field) {
        Some(v) if v == want => Ok(()),
        other => Err((
            port,
            format!(
                "node {port} reports {field}:{} (waiting for {want})",
                other.unwrap_or("(missing)")
            ),
        )),
    }
}

/// Calls `check` every 50 ms until it returns `Ok` or `timeout` passes; then the last
/// `(port, reason)` it gave.
pub(crate) fn poll<T>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, (u16, String)>,
) -> Result<T, (u16, String)> {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return Ok(value),
            Err(pending) if Instant::now() >= deadline => return Err(pending),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Polls until every port in `replicas` is linked to `primary` and has received everything
/// `primary` had written when this was called: its `slave_repl_offset` reaches the primary's
/// `master_repl_offset`. (A `WAIT` from a new connection proves nothing: it counts only that
/// connection's own writes, so it returns at once.)
pub(crate) fn wait_for_offsets(
    primary: u16,
    replicas: &[u16],
    timeout: Duration,
) -> Result<(), (u16, String)> {
    let info = info_text(primary, &["INFO", "replication"]).map_err(|e| (primary, e.0))?;
    let target: i64 = info_field(&info, "master_repl_offset")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            (
                primary,
                format!("primary {primary} reports no master_repl_offset"),
            )
        })?;
    poll(timeout, || {
        for &replica in replicas {
            let info = info_text(replica, &["INFO", "replication"]).map_err(|e| (replica, e.0))?;
            check_field(&info, "master_port", &primary.to_string(), replica)?;
            check_field(&info, "master_link_status", "up", replica)?;
            let offset: i64 = info_field(&info, "slave_repl_offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1);
            if offset < target {
                return Err((
                    replica,
                    format!("replica {replica} is at offset {offset}, the primary at {target}"),
                ));
            }
        }
        Ok(())
    })
}

/// A `redis-server` process (a cluster node, a data node or a sentinel) with its own directory
/// and log file; killed when dropped.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
    pub(crate) log: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Starts `redis-server ARGS --dir <dir> --logfile <log>` on a [`free_port`], in
    /// `root/node-<port>`, and waits (up to 10 s) until it answers `PING`. `args` gets the port
    /// and the node's directory (to write a config file into). When the process cannot have
    /// the port (it exits at once, or another server answers there) it tries again with a new
    /// port, up to 5 times.
    pub(crate) fn start(
        root: &Path,
        what: &str,
        mut args: impl FnMut(u16, &Path) -> Result<Vec<OsString>, HarnessError>,
    ) -> Result<Self, HarnessError> {
        let mut last = HarnessError(format!("the {what} did not start"));
        for _ in 0..5 {
            let port = free_port()?;
            let dir = root.join(format!("node-{port}"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| HarnessError(format!("cannot create {}: {e}", dir.display())))?;
            let args = args(port, &dir)?;
            match Self::start_at(port, dir, what, &args) {
                Ok(node) => return Ok(node),
                Err((true, e)) => last = e,
                Err((false, e)) => return Err(e),
            }
        }
        Err(last)
    }

    /// Starts `redis-server ARGS --dir <dir> --logfile <dir>/redis-<port>.log` for exactly
    /// `port` (which `args` must name) and waits (up to 10 s) until it answers `PING`.
    /// `Err((port_taken, error))`: `port_taken` when the process ended at once or another
    /// server answers on `port`.
    pub(crate) fn start_at(
        port: u16,
        dir: PathBuf,
        what: &str,
        args: &[OsString],
    ) -> Result<Self, (bool, HarnessError)> {
        let mut node = Self {
            port,
            log: dir.join(format!("redis-{port}.log")),
            dir,
            child: None,
        };
        let child = Command::new("redis-server")
            .args(args)
            .arg("--dir")
            .arg(&node.dir)
            .arg("--logfile")
            .arg(&node.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                let message = if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "the tests need `redis-server` on PATH and it is not there; {INSTALL_HINT}"
                    )
                } else {
                    format!("cannot start redis-server: {e}")
                };
                (false, HarnessError(message))
            })?;
        node.child = Some(child);
        node.wait_ready(what)?;
        Ok(node)
    }

    /// The process id, while the process runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until the port answers `PING` *from this process*: a `PONG` alone could come from
    /// a server someone else started on the port meanwhile (then this one cannot bind and is
    /// about to exit). `Err((port_taken, error))`.
    fn wait_ready(&mut self, what: &str) -> Result<(), (bool, HarnessError)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ping(self.port) {
                match self.answering_pid() {
                    Some(pid) if Some(pid) == self.pid() => return Ok(()),
                    Some(pid) => {
                        self.kill();
                        return Err((
                            true,
                            HarnessError(format!(
                                "the {what} could not have port {}: process {pid} serves it",
                                self.port
                            )),
                        ));
                    }
                    // Between PING and INFO the server went away or hung: look again.
                    None => {}
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err((
                        true,
                        HarnessError(format!(
                            "the {what} on port {} exited with {status}; last lines of {}:\n{}",
                            self.port,
                            self.log.display(),
                            self.log_tail(5)
                        )),
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err((
            false,
            HarnessError(format!(
                "the {what} on port {} did not answer PING within 10 s; last lines of {}:\n{}",
                self.port,
                self.log.display(),
                self.log_tail(5)
            )),
        ))
    }

    /// The `process_id` of whatever Redis answers on the port.
    fn answering_pid(&self) -> Option<u32> {
        let info = info_text(self.port, &["INFO", "server"]).ok()?;
        info_field(&info, "process_id")?.parse().ok()
    }

    /// True once [`Node::kill`] ran (or the process was found dead at start).
    pub(crate) fn is_killed(&self) -> bool {
        self.child.is_none()
    }

    /// SIGKILL, then wait for the process to exit.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `lines` lines of the node's log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail = tail(&text, lines);
        if tail.is_empty() {
            "(empty log)".to_owned()
        } else {
            tail
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// redis-cli colours its output even into a file.
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn os_args(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// A RESP2 reply.
#[derive(Debug)]
pub(crate) enum Reply {
    Text(String),
    Int(i64),
    Nil,
    Array(Vec<Reply>),
}

impl Reply {
    pub(crate) fn into_text(self) -> Option<String> {
        match self {
            Reply::Text(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn into_array(self) -> Option<Vec<Reply>> {
        match self {
            Reply::Array(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            Reply::Text(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// Sends one command to 127.0.0.1:`port` over a fresh connection and reads the reply; a Redis
/// error reply is an `Err`. Short timeouts: these are local servers, and a hung one should
/// make the poll go round again rather than stall it.
pub(crate) fn query(port: u16, args: &[&str]) -> Result<Reply, HarnessError> {
    let fail = |e: std::io::Error| HarnessError(format!("node {port}: {}: {e}", args.join(" ")));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(1))))
        .map_err(fail)?;
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request).map_err(fail)?;
    match read_reply(&mut BufReader::new(stream)).map_err(fail)? {
        Ok(reply) => Ok(reply),
        Err(message) => Err(HarnessError(format!(
            "node {port}: {}: {message}",
            args.join(" ")
        ))),
    }
}

/// The text of a bulk-string reply (`INFO`, `CLUSTER INFO`, `CLUSTER NODES`).
pub(crate) fn info_text(port: u16, args: &[&str]) -> Result<String, HarnessError> {
    query(port, args)?.into_text().ok_or_else(|| {
        HarnessError(format!(
            "node {port}: {} did not return text",
            args.join(" ")
        ))
    })
}

/// `Ok(Err(message))` for an error reply.
fn read_reply(r: &mut impl BufRead) -> std::io::Result<Result<Reply, String>> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(invalid("truncated reply"));
    }
    let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let number = || body.parse::<i64>().map_err(|_| invalid("bad length"));
    Ok(Ok(match line[0] {
        b'+' => Reply::Text(body),
        b'-' => return Ok(Err(body)),
        b':' => Reply::Int(number()?),
        b'$' => match usize::try_from(number()?) {
            Err(_) => Reply::Nil,
            Ok(len) => {
                let mut data = vec![0; len + 2];
                std::io::Read::read_exact(r, &mut data)?;
                data.truncate(len);
                Reply::Text(String::from_utf8_lossy(&data).into_owned())
            }
        },
        b'*' => match usize::try_from(number()?) {
            Err(_) => Reply::Nil,
            Ok(len) => {
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    match read_reply(r)? {
                        Ok(item) => items.push(item),
                        Err(message) => items.push(Reply::Text(format!("-{message}"))),
                    }
                }
                Reply::Array(items)
            }
        },
        _ => return Err(invalid("unknown reply type")),
    }))
}
