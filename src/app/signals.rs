//! Ctrl-C and SIGTERM end a watch by printing the report: they only set flags the loop polls.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The termination signals received so far.
#[derive(Clone, Default)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The last signal received (0: none).
    signal: AtomicI32,
    /// A SIGINT that some process sent with kill(2), as opposed to the terminal's Ctrl-C,
    /// which already reaches the whole foreground process group.
    sent_sigint: AtomicBool,
    pending_forward: AtomicI32,
}

impl Stop {
    /// Catch SIGINT and SIGTERM for the rest of the process's life.
    pub fn install() -> Stop {
        let stop = Stop::default();
        if let Ok(mut signals) = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM]) {
            let inner = Arc::clone(&stop.inner);
            std::thread::spawn(move || {
                for info in signals.forever() {
                    let from_process = info.process.is_some_and(|p| p.pid > 0);
                    if info.signal == SIGINT && from_process {
                        inner.sent_sigint.store(true, Ordering::SeqCst);
                    }
                    // Ctrl-C already reached a child in our process group; anything sent to
                    // fdiff alone must be passed on.
                    if info.signal == SIGTERM || from_process {
                        inner.pending_forward.store(info.signal, Ordering::SeqCst);
                    }
                    inner.signal.store(info.signal, Ordering::SeqCst);
                }
            });
        }
        stop
    }

    /// The signal that asked fdiff to stop, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.inner.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// A signal to pass on to a child, taken once.
    pub fn take_forward(&self) -> Option<i32> {
        match self.inner.pending_forward.swap(0, Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// Sleep until `deadline` or a signal, whichever comes first.
    pub fn sleep_until(&self, deadline: std::time::Instant) {
        loop {
            let now = std::time::Instant::now();
            if now >= deadline || self.signal().is_some() {
                return;
            }
            std::thread::sleep((deadline - now).min(std::time::Duration::from_millis(25)));
        }
    }
}
