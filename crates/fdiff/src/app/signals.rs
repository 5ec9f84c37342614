//! Ctrl-C and SIGTERM end a watch by printing the report: they only set flags the loop polls.
//! Once the report is being written (to a reader that may have stalled), a signal ends fdiff
//! at once instead.

use rustix::event::{PollFd, PollFlags};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The termination signals received so far.
#[derive(Clone, Default)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The last signal received (0: none).
    signal: AtomicI32,
    pending_forward: AtomicI32,
    /// Set once only final output is left: a write to a stalled pipe may block there, and
    /// nothing polls the flags any more.
    exit_at_once: AtomicBool,
    /// A pidfd whose process's exit ends a sleep early (the command of `fdiff run`), taken
    /// when it fires so that later sleeps are whole again.
    wake: Mutex<Option<OwnedFd>>,
}

impl Stop {
    /// Catch SIGINT and SIGTERM for the rest of the process's life.
    pub fn install() -> Stop {
        let stop = Stop::default();
        if let Ok(mut signals) = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM]) {
            let inner = Arc::clone(&stop.inner);
            std::thread::spawn(move || {
                for info in signals.forever() {
                    if inner.exit_at_once.load(Ordering::SeqCst) {
                        // The main thread may sit in a write nobody reads; a shell's status
                        // for "ended by signal N" is all that is left to give.
                        // SAFETY: _exit ends the process without running anything else,
                        // which is the point: a flush here could block like the main thread.
                        unsafe { libc::_exit(128 + info.signal) };
                    }
                    let from_process = info.process.is_some_and(|p| p.pid > 0);
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

    /// From now on SIGINT or SIGTERM ends fdiff at once with status 128+N: call it before the
    /// final report, whose write may block on a reader that stopped reading.
    pub fn exit_on_signal(&self) {
        self.inner.exit_at_once.store(true, Ordering::SeqCst);
    }

    /// End the next sleep as soon as process `pid` exits (fdiff's own child: the pid cannot
    /// be reused before fdiff reaps it). Without pidfds sleeps simply run their course.
    pub fn wake_on_exit(&self, pid: i32) {
        let fd = rustix::process::Pid::from_raw(pid).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        if let Ok(mut w) = self.inner.wake.lock() {
            *w = fd;
        }
    }

    /// Sleep until `deadline`, a signal, or the exit of the process given to
    /// [`Stop::wake_on_exit`], whichever comes first.
    pub fn sleep_until(&self, deadline: Instant) {
        loop {
            let now = Instant::now();
            if now >= deadline || self.signal().is_some() {
                return;
            }
            // Signals are polled, so no step is longer than 25 ms.
            let step = (deadline - now).min(Duration::from_millis(25));
            if self.wait_wake(step) {
                return;
            }
        }
    }

    /// Wait up to `step` on the wake pidfd (or just sleep); true when it fired.
    fn wait_wake(&self, step: Duration) -> bool {
        let Ok(mut guard) = self.inner.wake.lock() else {
            std::thread::sleep(step);
            return false;
        };
        let Some(fd) = guard.as_ref() else {
            drop(guard);
            std::thread::sleep(step);
            return false;
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        let ts = rustix::time::Timespec {
            tv_sec: step.as_secs() as i64,
            tv_nsec: i64::from(step.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => {
                *guard = None;
                true
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => false,
            Err(_) => {
                *guard = None;
                false
            }
        }
    }
}
