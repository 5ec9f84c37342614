//! The tracer thread: it starts the command (ptrace needs the tracer to be one thread, and
//! only it may wait for the tracees), serves the seccomp stops, and reports the command's
//! exit status to the rest of fdiff.

use crate::Arming;
use crate::python::Python;
use crate::store::{Opened, Store};
use crate::unwind::{Unwinding, read_mem};
use std::collections::{HashMap, HashSet};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

struct Shared {
    store: Mutex<Store>,
    armed: Mutex<HashSet<i32>>,
    /// Anything armed at all: the unarmed stop checks only this.
    any_armed: AtomicBool,
    all: AtomicBool,
    status: Mutex<Option<ExitStatus>>,
}

/// A command started under the tracer (clones share it).
#[derive(Clone)]
pub struct Tracer {
    pid: i32,
    shared: Arc<Shared>,
}

impl Tracer {
    /// Start `cmd` traced. The error is spawn's (so the caller can say what is missing).
    pub fn spawn(mut cmd: Command, arming: Arming) -> std::io::Result<Tracer> {
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            armed: Mutex::new(HashSet::new()),
            any_armed: AtomicBool::new(arming == Arming::Now),
            all: AtomicBool::new(arming == Arming::Now),
            status: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel();
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("fdiff-stacks".into())
            .spawn(move || {
                let prog = crate::seccomp::program();
                // SAFETY: install makes only async-signal-safe syscalls.
                unsafe {
                    cmd.pre_exec(move || crate::seccomp::install(&prog));
                }
                match cmd.spawn() {
                    Ok(child) => {
                        let pid = child.id() as i32;
                        // The tracer waits for it from now on, never std's Child.
                        drop(child);
                        let _ = tx.send(Ok(pid));
                        serve(pid, &sh);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })?;
        let pid = rx
            .recv()
            .map_err(|_| std::io::Error::other("the tracer thread ended"))??;
        Ok(Tracer { pid, shared })
    }

    /// The command's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Its exit status, once it has exited.
    pub fn status(&self) -> Option<ExitStatus> {
        *self.shared.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Capture from now on for `tgid` (a group of it is judged leaking).
    pub fn arm(&self, tgid: i32) {
        let mut a = self.shared.armed.lock().unwrap_or_else(|e| e.into_inner());
        if a.insert(tgid) {
            self.shared.any_armed.store(true, Ordering::Release);
        }
    }

    /// Whether `tgid` is armed.
    pub fn is_armed(&self, tgid: i32) -> bool {
        self.shared.all.load(Ordering::Acquire)
            || self
                .shared
                .armed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&tgid)
    }

    /// Run `f` on the store.
    pub fn with_store<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(&self.shared.store.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[derive(PartialEq)]
enum TidState {
    Running,
    AwaitExit,
}

fn ptrace(req: libc::c_uint, pid: i32, addr: usize, data: usize) -> libc::c_long {
    // SAFETY: requests on our own tracees; pointers passed are valid for the call.
    unsafe { libc::ptrace(req, pid, addr, data) }
}

fn tgid_of(tid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(tid)
}

fn serve(root: i32, sh: &Shared) {
    let opts = libc::PTRACE_O_TRACESECCOMP
        | libc::PTRACE_O_TRACESYSGOOD
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEEXEC;
    let mut tids: HashMap<i32, (i32, TidState)> = HashMap::new();
    let mut unwinding = Unwinding::default();
    let mut python = Python::default();
    let mut first = true;
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let tid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if tid < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            if let Some((tgid, _)) = tids.remove(&tid) {
                if tgid == tid {
                    unwinding.forget(tgid);
                    python.forget(tgid);
                }
            }
            if tid == root {
                use std::os::unix::process::ExitStatusExt;
                *sh.status.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(ExitStatus::from_raw(status));
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        if first && tid == root {
            // The SIGTRAP after the exec of the command.
            first = false;
            ptrace(libc::PTRACE_SETOPTIONS, tid, 0, opts as usize);
            tids.insert(tid, (tid, TidState::Running));
            ptrace(libc::PTRACE_CONT, tid, 0, 0);
            continue;
        }
        let new = !tids.contains_key(&tid);
        let entry = tids
            .entry(tid)
            .or_insert_with(|| (tgid_of(tid), TidState::Running));
        let tgid = entry.0;
        if sig == libc::SIGTRAP && event == libc::PTRACE_EVENT_SECCOMP {
            let armed = sh.any_armed.load(Ordering::Acquire)
                && (sh.all.load(Ordering::Acquire)
                    || sh
                        .armed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .contains(&tgid));
            if armed {
                // On to the syscall's exit, where the fd is known.
                entry.1 = TidState::AwaitExit;
                ptrace(libc::PTRACE_SYSCALL, tid, 0, 0);
            } else {
                ptrace(libc::PTRACE_CONT, tid, 0, 0);
            }
            continue;
        }
        if sig == (libc::SIGTRAP | 0x80) {
            if entry.1 == TidState::AwaitExit {
                entry.1 = TidState::Running;
                capture(tgid, tid, sh, &mut unwinding, &mut python);
            }
            ptrace(libc::PTRACE_CONT, tid, 0, 0);
            continue;
        }
        if sig == libc::SIGTRAP && event != 0 {
            if event == libc::PTRACE_EVENT_EXEC {
                // A new image: old addresses and modules mean nothing now. The tid may be
                // the old thread-group leader's now.
                entry.0 = tgid_of(tid);
                unwinding.forget(tgid);
                python.forget(tgid);
                sh.store
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .forget_addresses(tgid);
            }
            ptrace(libc::PTRACE_CONT, tid, 0, 0);
            continue;
        }
        // A new tracee's first stop, or a signal for it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let is_group_stop = ptrace(
            libc::PTRACE_GETSIGINFO,
            tid,
            0,
            &mut info as *mut libc::siginfo_t as usize,
        ) < 0;
        // A new tracee starts with a SIGSTOP of the kernel's that it must not get.
        let pass = if is_group_stop || (new && sig == libc::SIGSTOP) {
            0
        } else {
            sig
        };
        ptrace(libc::PTRACE_CONT, tid, 0, pass as usize);
    }
}

/// Capture at the exit of an fd syscall of `tid`.
fn capture(tgid: i32, tid: i32, sh: &Shared, unwinding: &mut Unwinding, python: &mut Python) {
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: (&mut regs as *mut libc::user_regs_struct).cast(),
        iov_len: std::mem::size_of::<libc::user_regs_struct>(),
    };
    const NT_PRSTATUS: usize = 1;
    if ptrace(
        libc::PTRACE_GETREGSET,
        tid,
        NT_PRSTATUS,
        &mut iov as *mut libc::iovec as usize,
    ) < 0
    {
        sh.store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drops
            .unwind_failed += 1;
        return;
    }
    let ret = regs.rax as i64;
    if ret < 0 {
        return;
    }
    let nr = regs.orig_rax as libc::c_long;
    let fds: Vec<i32> =
        if nr == libc::SYS_pipe || nr == libc::SYS_pipe2 || nr == libc::SYS_socketpair {
            let at = if nr == libc::SYS_socketpair {
                regs.r10
            } else {
                regs.rdi
            };
            let mut b = [0u8; 8];
            if read_mem(tid, at, &mut b) < 8 {
                return;
            }
            vec![
                i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            ]
        } else {
            vec![ret as i32]
        };
    let native = unwinding.addresses(tgid, tid, &regs);
    // The Python frames are part of the key: the leaking and the healthy Python function call
    // open() through the same native frames.
    let py = python.walk(tgid, tid);
    let mut raw = native.clone();
    if !py.is_empty() {
        raw.push(u64::MAX);
        for f in &py {
            raw.push(f.code);
            raw.push(f.ident);
            raw.push((f.instr as u64) ^ (u64::from(f.entry) << 63));
        }
    }
    if !python.notes.is_empty() {
        let mut st = sh.store.lock().unwrap_or_else(|e| e.into_inner());
        for n in python.notes.drain(..) {
            if !st.notes.contains(&n) {
                st.notes.push(n);
            }
        }
    }
    let known = sh
        .store
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .id_of(tgid, &raw);
    let id = match known {
        Some(id) => Some(id),
        None => {
            // Symbolized now, while the process is stopped and its maps are the ones the
            // addresses belong to; once per distinct stack.
            let mut stack = unwinding.symbolize(tgid, &native);
            if !py.is_empty() {
                let named = python.name(tgid, tid, &py);
                stack.frames = crate::python::interleave(std::mem::take(&mut stack.frames), named);
            }
            sh.store
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(tgid, raw, stack)
        }
    };
    let Some(id) = id else { return };
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    for fd in fds {
        let target = std::fs::read_link(format!("/proc/{tgid}/fd/{fd}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        sh.store.lock().unwrap_or_else(|e| e.into_inner()).opened(
            tgid,
            fd,
            Opened {
                stack: id,
                tid,
                time,
                target,
            },
        );
    }
}
