//! The HTTP side of `fdiff serve`: `GET /metrics`, `/report`, `/healthz`, served from the
//! snapshot the watch published last, so a scrape never waits for, or slows, a tick.
//!
//! A deliberately small HTTP/1.1 server on std sockets: one thread per connection up to a
//! cap (the rest get `503` at once and are closed), a read and a write timeout on every
//! connection (a client that never sends or never reads is dropped), a bounded request head
//! and one request per connection (`Connection: close`). tiny_http was considered: it has no
//! connection cap nor socket timeouts to set, which are the two things this needs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest request head accepted (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;

/// What a scrape is served: rendered once per tick by the watch.
#[derive(Debug, Default)]
pub struct Published {
    /// Prometheus text format 0.0.4.
    pub text: String,
    /// OpenMetrics 1.0.
    pub openmetrics: String,
    /// The live report, `fdiff/report/v1` JSON.
    pub report: String,
    /// Ticks taken so far.
    pub ticks: u64,
}

/// Where the watch publishes and the server reads: the lock is held only to swap or clone
/// an `Arc`.
#[derive(Debug, Default, Clone)]
pub struct Board(Arc<Mutex<Arc<Published>>>);

impl Board {
    pub fn publish(&self, p: Published) {
        let p = Arc::new(p);
        match self.0.lock() {
            Ok(mut g) => *g = p,
            Err(poisoned) => *poisoned.into_inner() = p,
        }
    }

    pub fn latest(&self) -> Arc<Published> {
        match self.0.lock() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// Limits of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// How long a connection may take to send its request, and to take each write.
    pub timeout: Duration,
}

/// Accept connections on `listener` until the process ends; each served on its own thread.
pub fn serve(listener: TcpListener, board: Board, limits: Limits) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(stream) = conn else {
            // EMFILE and the like: back off a little rather than spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = stream.set_write_timeout(Some(limits.timeout));
        let _ = stream.set_read_timeout(Some(limits.timeout));
        if active.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            active.fetch_sub(1, Ordering::AcqRel);
            // Answered on the accept thread, with a short write timeout: a 503 fits any
            // socket buffer, so this never waits on the client.
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let mut s = stream;
            let _ = respond(
                &mut s,
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                b"fdiff: too many connections at once; try again\n",
                false,
            );
            continue;
        }
        let board = board.clone();
        let active2 = Arc::clone(&active);
        let spawned = std::thread::Builder::new()
            .name("fdiff-http".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                let mut s = stream;
                handle(&mut s, &board);
                active2.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// One connection: read the head, answer, close.
fn handle(s: &mut TcpStream, board: &Board) {
    let head = match read_head(s) {
        Ok(h) => h,
        Err(HeadError::TooLong) => {
            let _ = respond(
                s,
                "431 Request Header Fields Too Large",
                "text/plain; charset=utf-8",
                b"fdiff: request head too long\n",
                false,
            );
            return;
        }
        // Timed out or closed before a whole head: nothing to answer.
        Err(HeadError::Io) => return,
    };
    let (status, ctype, body, head_only) = route(&head, board);
    let _ = respond(s, status, ctype, body.as_bytes(), head_only);
}

enum HeadError {
    TooLong,
    Io,
}

fn read_head(s: &mut TcpStream) -> Result<Vec<u8>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).map_err(|_| HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Io);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_end(&buf) {
            buf.truncate(end);
            return Ok(buf);
        }
        if buf.len() > MAX_HEAD {
            return Err(HeadError::TooLong);
        }
    }
}

fn find_end(b: &[u8]) -> Option<usize> {
    b.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| b.windows(2).position(|w| w == b"\n\n"))
}

/// The answer to one request head: status, content type, body, and whether it is a HEAD.
pub fn route(head: &[u8], board: &Board) -> (&'static str, &'static str, String, bool) {
    const PLAIN: &str = "text/plain; charset=utf-8";
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(_) => {
            return (
                "400 Bad Request",
                PLAIN,
                "fdiff: malformed request: not text\n".into(),
                false,
            );
        }
    };
    let mut lines = text.lines();
    let request = lines.next().unwrap_or("");
    let mut parts = request.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return (
            "400 Bad Request",
            PLAIN,
            format!(
                "fdiff: malformed request line {}: expected 'GET /metrics HTTP/1.1'\n",
                crate::util::quoted(request)
            ),
            false,
        );
    };
    if !version.starts_with("HTTP/1.") {
        return (
            "505 HTTP Version Not Supported",
            PLAIN,
            format!(
                "fdiff: HTTP version {} not supported: use HTTP/1.1\n",
                crate::util::quoted(version)
            ),
            false,
        );
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return (
            "405 Method Not Allowed",
            PLAIN,
            format!(
                "fdiff: method {} not allowed: only GET and HEAD\n",
                crate::util::quoted(method)
            ),
            false,
        );
    }
    let accept = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("accept"))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let path = target.split('?').next().unwrap_or("");
    let p = board.latest();
    match path {
        "/metrics" if accept.contains("application/openmetrics-text") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            p.openmetrics.clone(),
            head_only,
        ),
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            p.text.clone(),
            head_only,
        ),
        "/report" => ("200 OK", "application/json", p.report.clone(), head_only),
        "/healthz" => (
            "200 OK",
            PLAIN,
            format!("ok {} ticks\n", p.ticks),
            head_only,
        ),
        "/" => (
            "200 OK",
            PLAIN,
            "fdiff serve: GET /metrics, /report, /healthz\n".into(),
            head_only,
        ),
        _ => (
            "404 Not Found",
            PLAIN,
            format!(
                "fdiff: no such path {}: try /metrics, /report or /healthz\n",
                crate::util::quoted(path)
            ),
            head_only,
        ),
    }
}

fn respond(
    s: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    if !head_only {
        s.write_all(body)?;
    }
    s.flush()?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_malformed_requests_answer_one_line() {
        let b = Board::default();
        b.publish(Published {
            text: "t".into(),
            openmetrics: "om".into(),
            report: "{}".into(),
            ticks: 3,
        });
        let r = route(
            b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0",
            &b,
        );
        assert_eq!((r.0, r.2.as_str()), ("200 OK", "om"));
        let r = route(b"GET /metrics HTTP/1.1\r\nAccept: text/plain", &b);
        assert_eq!(r.2, "t");
        assert!(route(b"GET /healthz HTTP/1.0", &b).2.contains("3 ticks"));
        for bad in [
            &b"garbage"[..],
            b"GET  /x HTTP/1.1",
            b"\xff\xfe",
            b"GET / SPDY/3",
        ] {
            let r = route(bad, &b);
            assert!(
                r.0.starts_with('4') || r.0.starts_with('5'),
                "{bad:?}: {}",
                r.0
            );
            assert_eq!(r.2.trim_end().lines().count(), 1, "{}", r.2);
        }
        assert!(route(b"POST /metrics HTTP/1.1", &b).0.starts_with("405"));
        let r = route(b"GET /\x1b[31m HTTP/1.1", &b);
        assert!(r.0.starts_with("404") && !r.2.contains('\x1b'), "{}", r.2);
    }
}
