//! Where output goes: stdout with a closed pipe treated as success, warnings on stderr, and
//! whether to color.

use crate::error::Error;
use std::io::{self, IsTerminal, Write};

/// Map a write error: a closed pipe (`fdiff … | head`) ends quietly with success.
pub fn write_err(e: io::Error, what: &str) -> Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Error::broken_pipe()
    } else {
        Error::io(&format!("write to {what}"), &e)
    }
}

pub fn warn(msg: &str) {
    let _ = writeln!(
        io::stderr().lock(),
        "fdiff: warning: {}",
        crate::util::escape_control(msg)
    );
}

/// Color only on a terminal, and never with NO_COLOR set (to anything non-empty).
pub fn color_for(is_tty: bool) -> bool {
    is_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn stdout_color() -> bool {
    color_for(io::stdout().is_terminal())
}

pub fn stderr_color() -> bool {
    color_for(io::stderr().is_terminal())
}

/// Lines a tick may print before it is summarised per group: a screenful on a terminal.
pub fn screen_lines(on_stdout: bool) -> usize {
    let rows = if on_stdout {
        rustix::termios::tcgetwinsize(io::stdout()).ok()
    } else {
        rustix::termios::tcgetwinsize(io::stderr()).ok()
    };
    match rows {
        Some(ws) if ws.ws_row > 8 => usize::from(ws.ws_row) - 6,
        _ => 40,
    }
}

/// The stream live lines go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Lines a stalled reader may leave queued before new ones are dropped.
pub const LIVE_QUEUE_LINES: usize = 1024;

/// Live lines go through a bounded queue to a writer thread: a reader that stops reading
/// (`fdiff … | less`, not scrolling) fills the queue and further lines are dropped and
/// counted, while the watch, its recording and its report go on. The stream itself stays
/// blocking (O_NONBLOCK would change it for every process sharing the terminal or pipe).
pub struct LiveQueue {
    tx: Option<std::sync::mpsc::SyncSender<String>>,
    state: std::sync::Arc<QueueState>,
    writer: Option<std::thread::JoinHandle<()>>,
    sent: u64,
    /// Lines refused because the queue was full.
    full: u64,
}

#[derive(Default)]
struct QueueState {
    written: std::sync::atomic::AtomicU64,
    /// The watch is over and did not wait for the writer: what it has not written is dropped,
    /// and it never writes after the final report began.
    abandoned: std::sync::atomic::AtomicBool,
}

impl LiveQueue {
    pub fn start(stream: Stream, capacity: usize) -> LiveQueue {
        use std::sync::atomic::Ordering;
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(capacity.max(1));
        let state = std::sync::Arc::new(QueueState::default());
        let st = std::sync::Arc::clone(&state);
        let writer = std::thread::Builder::new()
            .name("live-lines".to_owned())
            .spawn(move || {
                let mut broken = false;
                let mut batch = String::new();
                while let Ok(first) = rx.recv() {
                    batch.clear();
                    batch.push_str(&first);
                    batch.push('\n');
                    let mut n = 1;
                    while batch.len() < 1 << 16 {
                        let Ok(more) = rx.try_recv() else { break };
                        batch.push_str(&more);
                        batch.push('\n');
                        n += 1;
                    }
                    if broken {
                        // A reader that went away (`| head`): keep draining so the queue
                        // never reads as stalled.
                        continue;
                    }
                    let res = match stream {
                        Stream::Stdout => write_locked(&mut io::stdout().lock(), &batch, &st),
                        Stream::Stderr => write_locked(&mut io::stderr().lock(), &batch, &st),
                    };
                    match res {
                        Some(Ok(())) => {
                            st.written.fetch_add(n, Ordering::SeqCst);
                        }
                        Some(Err(_)) => broken = true,
                        None => return,
                    }
                }
            })
            .ok();
        LiveQueue {
            tx: writer.as_ref().map(|_| tx),
            state,
            writer,
            sent: 0,
            full: 0,
        }
    }

    /// Stop taking lines; give the writer `grace` to write what is queued. Returns how many
    /// lines were dropped because nobody read them (0 when the reader kept up or went away).
    pub fn finish(mut self, grace: std::time::Duration) -> u64 {
        use std::sync::atomic::Ordering;
        drop(self.tx.take());
        let deadline = std::time::Instant::now() + grace;
        if let Some(w) = self.writer.take() {
            while !w.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            if w.is_finished() {
                let _ = w.join();
            } else {
                // Still blocked in a write: leave it there; it writes nothing after this.
                self.state.abandoned.store(true, Ordering::SeqCst);
                let written = self.state.written.load(Ordering::SeqCst);
                return self.full + self.sent.saturating_sub(written);
            }
        }
        self.full
    }
}

/// Write one batch under the stream's lock, unless the watch is over (None then).
fn write_locked(w: &mut dyn Write, batch: &str, st: &QueueState) -> Option<io::Result<()>> {
    // Checked under the lock: the final report takes the same lock after setting the flag.
    if st.abandoned.load(std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    Some(w.write_all(batch.as_bytes()).and_then(|()| w.flush()))
}

impl crate::report::live::Sink for LiveQueue {
    fn line(&mut self, s: String) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(s) {
            Ok(()) => self.sent += 1,
            Err(std::sync::mpsc::TrySendError::Full(_)) => self.full += 1,
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Whether a short write to stderr would not block now (a stalled reader of stderr must not
/// hold up a note about it).
pub fn stderr_writable() -> bool {
    let err = io::stderr();
    let mut fds = [rustix::event::PollFd::new(
        &err,
        rustix::event::PollFlags::OUT,
    )];
    matches!(
        rustix::event::poll(
            &mut fds,
            Some(&rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 0
            })
        ),
        Ok(n) if n > 0 && fds[0].revents().contains(rustix::event::PollFlags::OUT)
    )
}

/// Warnings during a watch: written when stderr can take them without blocking, held (and
/// retried every tick) while a stalled reader of stderr cannot, so the watch never waits on
/// it. What is still held when the watch ends is given up.
#[derive(Default)]
pub struct Notes {
    held: std::collections::VecDeque<String>,
}

/// Warnings a stalled stderr may hold back before the oldest are given up.
const NOTES_HELD: usize = 256;

impl Notes {
    pub fn warn(&mut self, msg: String) {
        if self.held.len() >= NOTES_HELD {
            self.held.pop_front();
        }
        self.held.push_back(msg);
        self.flush();
    }

    pub fn flush(&mut self) {
        while !self.held.is_empty() && stderr_writable() {
            if let Some(m) = self.held.pop_front() {
                warn(&m);
            }
        }
    }
}
