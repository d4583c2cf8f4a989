//! Ports for the servers a test starts.
//!
//! Asking the kernel for port 0 and closing the probe socket hands out an *ephemeral* port: the
//! same range the kernel picks from for every outgoing connection (each Redis client, each
//! `PING` a harness sends) and for every other `bind(0)` on the machine. Between the probe and
//! the server's own `bind`, that port can be taken by any of those, and two harnesses running
//! in parallel threads can even be handed the same one. [`free_port`] avoids both: it hands
//! out ports *below* the ephemeral range (where the kernel never picks on its own), each one
//! once per process, starting at a random offset so two test processes rarely meet.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::redis_server::HarnessError;

/// The lowest port handed out: above the usual fixed service ports.
const LOWEST: u16 = 16384;
/// Fewer candidate ports than this outside the ephemeral range: fall back to the kernel.
const MIN_SPAN: u16 = 1024;

/// A port on 127.0.0.1 that nothing listens on now and that this process has not handed out
/// before (until it has gone round the whole range, thousands of ports). Ports come from outside the kernel's ephemeral range (read from
/// `/proc/sys/net/ipv4/ip_local_port_range`, else the Linux default), so an outgoing connection
/// cannot occupy one between this call and the server's `bind`.
///
/// Someone else may still take it in between (another process picking fixed ports); a server
/// that fails to bind should be started again on another port, as the harnesses here do.
///
/// # Errors
/// [`HarnessError`] when no port is free.
pub fn free_port() -> Result<u16, HarnessError> {
    let Some((low, span)) = candidate_range() else {
        return kernel_port();
    };
    static CURSOR: OnceLock<AtomicU32> = OnceLock::new();
    let cursor = CURSOR.get_or_init(|| AtomicU32::new(rand::random::<u32>() % u32::from(span)));
    for _ in 0..span {
        let offset = cursor.fetch_add(1, Ordering::Relaxed) % u32::from(span);
        let port = low + u16::try_from(offset).unwrap_or(0);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(HarnessError(format!(
        "no free port on 127.0.0.1 between {low} and {}",
        u32::from(low) + u32::from(span) - 1
    )))
}

/// `(first port, how many)` below the ephemeral range, or above it, or `None` when neither has
/// room.
fn candidate_range() -> Option<(u16, u16)> {
    let (ephemeral_low, ephemeral_high) = ephemeral_range();
    if ephemeral_low >= LOWEST + MIN_SPAN {
        return Some((LOWEST, ephemeral_low - LOWEST));
    }
    let above = u16::MAX - ephemeral_high;
    (above >= MIN_SPAN).then(|| (ephemeral_high + 1, above))
}

/// The kernel's ephemeral port range (Linux's default when it cannot be read).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| parse_range(&text))
        .unwrap_or((32768, 60999))
}

fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => Some((low, high)),
        _ => None,
    }
}

fn kernel_port() -> Result<u16, HarnessError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| HarnessError(format!("cannot find a free port: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_outside_the_ephemeral_range() {
        let (low, high) = ephemeral_range();
        let ports: Vec<u16> = (0..200)
            .map(|_| free_port().expect("a free port"))
            .collect();
        let distinct: std::collections::HashSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len());
        if candidate_range().is_some() {
            assert!(ports.iter().all(|p| *p < low || *p > high), "{ports:?}");
        }
    }

    #[test]
    fn reads_the_proc_format() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_range("60999 32768"), None);
        assert_eq!(parse_range("garbage"), None);
    }
}
