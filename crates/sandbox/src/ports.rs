//! Ports for the processes the sandbox starts, which bind them themselves.
//!
//! A port from `bind(127.0.0.1:0)` comes from the kernel's ephemeral range,
//! the range it also draws outgoing connections' local ports from. Between
//! the pick and the child's own bind (a second or more for JupyterHub and its
//! proxy) any connection made on the machine can take it, and the child dies
//! with "Address already in use": seen in the suite, where a dozen processes
//! open connections all the time. Ports below the ephemeral range are taken
//! only by an explicit bind, so [`free_port`] draws them there, at random so
//! that parallel test processes do not pick the same one, and checks each by
//! binding it.

use std::net::TcpListener;

/// The lowest port drawn: clear of the well-known and most registered
/// services' ports.
const FLOOR: u16 = 10_000;

/// Linux's default ephemeral range, for a machine without procfs.
const DEFAULT_EPHEMERAL: (u16, u16) = (32_768, 60_999);

/// A port on 127.0.0.1 that nothing listens on, below the ephemeral range
/// where the machine allows it (otherwise one the kernel picks).
pub fn free_port() -> std::io::Result<u16> {
    let (ephemeral_low, _) = ephemeral_range();
    if ephemeral_low > FLOOR {
        let span = u32::from(ephemeral_low - FLOOR);
        for _ in 0..64 {
            // A v7 id's low bits are random: no RNG crate for this alone.
            let random = uuid::Uuid::now_v7().as_u128() as u32;
            let port = FLOOR + (random % span) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A free port that is none of `taken`.
pub fn free_port_except(taken: &[u16]) -> std::io::Result<u16> {
    for _ in 0..100 {
        let port = free_port()?;
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other(format!(
        "no free port on 127.0.0.1 other than {taken:?}"
    )))
}

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`).
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(str::parse::<u16>);
            Some((bounds.next()?.ok()?, bounds.next()?.ok()?))
        })
        .unwrap_or(DEFAULT_EPHEMERAL)
}
