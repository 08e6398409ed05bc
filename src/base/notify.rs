//! systemd notifications (`sd_notify`): READY, WATCHDOG and STOPPING over the datagram socket
//! named by `$NOTIFY_SOCKET`. Outside systemd (no variable) every call is a silent no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to the service manager's notification socket, if there is one.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    /// Half the watchdog timeout (`$WATCHDOG_USEC`), how often to ping; None without a watchdog.
    pub watchdog_every: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` and `$WATCHDOG_USEC`.
    pub fn from_env() -> Self {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            let addr = if let Some(name) = path.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).ok()?
            } else {
                std::os::unix::net::SocketAddr::from_pathname(&path).ok()?
            };
            Some((UnixDatagram::unbound().ok()?, addr))
        });
        let watchdog_every = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&us| us > 0)
            .map(|us| Duration::from_micros(us / 2));
        Notifier {
            socket,
            watchdog_every,
        }
    }

    fn send(&self, msg: &str) {
        if let Some((sock, addr)) = &self.socket
            && let Err(e) = sock.send_to_addr(msg.as_bytes(), addr)
        {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }

    /// Start-up finished: the kiosk serves.
    pub fn ready(&self) {
        self.send("READY=1\nSTATUS=serving");
    }

    /// Still alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// Shutting down.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_the_socket_named_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        // SAFETY: this test is the only one in the crate touching these variables.
        unsafe {
            std::env::set_var("NOTIFY_SOCKET", &path);
            std::env::set_var("WATCHDOG_USEC", "4000000");
        }
        let n = Notifier::from_env();
        unsafe {
            std::env::remove_var("NOTIFY_SOCKET");
            std::env::remove_var("WATCHDOG_USEC");
        }
        assert_eq!(n.watchdog_every, Some(Duration::from_secs(2)));
        n.ready();
        n.watchdog();
        n.stopping();
        let mut buf = [0u8; 128];
        let mut got = Vec::new();
        for _ in 0..3 {
            let k = server.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..k]).into_owned());
        }
        assert_eq!(got, ["READY=1\nSTATUS=serving", "WATCHDOG=1", "STOPPING=1"]);
        // Without the variable, nothing is sent and nothing fails.
        Notifier::from_env().ready();
    }
}
