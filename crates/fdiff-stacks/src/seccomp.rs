//! The seccomp filter installed in the child before exec: SECCOMP_RET_TRACE for the
//! fd-creating syscalls only, so every other syscall runs without a stop.

/// The syscalls whose successful return is a new fd (or two: pipe, pipe2, socketpair).
/// close/close_range are not here: survival is known from the snapshots, and a stop per
/// close would double the cost of a tight open/close loop.
pub const FD_SYSCALLS: &[libc::c_long] = &[
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_creat,
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_pipe,
    libc::SYS_pipe2,
    libc::SYS_eventfd,
    libc::SYS_eventfd2,
    libc::SYS_epoll_create,
    libc::SYS_epoll_create1,
    libc::SYS_timerfd_create,
    libc::SYS_signalfd,
    libc::SYS_signalfd4,
    libc::SYS_inotify_init,
    libc::SYS_inotify_init1,
    libc::SYS_fanotify_init,
    libc::SYS_memfd_create,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_getfd,
    libc::SYS_dup,
    libc::SYS_dup2,
    libc::SYS_dup3,
];

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
// Offsets into struct seccomp_data.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG1_LO: u32 = 24;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

/// The filter program.
pub fn program() -> Vec<libc::sock_filter> {
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let mut p = vec![
        stmt(ld, ARCH),
        // Another ABI (i386 via int 0x80) is let through: not traced rather than broken.
        jeq(AUDIT_ARCH_X86_64, 1, 0),
        stmt(ret, SECCOMP_RET_ALLOW),
        stmt(ld, NR),
    ];
    for &nr in FD_SYSCALLS {
        p.push(jeq(nr as u32, 0, 1));
        p.push(stmt(ret, SECCOMP_RET_TRACE));
    }
    // fcntl only for F_DUPFD and F_DUPFD_CLOEXEC: the other commands are frequent and
    // create nothing.
    p.push(jeq(libc::SYS_fcntl as u32, 0, 5));
    p.push(stmt(ld, ARG1_LO));
    p.push(jeq(libc::F_DUPFD as u32, 2, 0));
    p.push(jeq(libc::F_DUPFD_CLOEXEC as u32, 1, 0));
    p.push(stmt(ret, SECCOMP_RET_ALLOW));
    p.push(stmt(ret, SECCOMP_RET_TRACE));
    p.push(stmt(ret, SECCOMP_RET_ALLOW));
    p
}

/// In the child between fork and exec: become traced, then install the filter (in this
/// order: a RET_TRACE with no tracer fails the syscall with ENOSYS).
///
/// # Safety
/// Only async-signal-safe calls; `prog` was built before the fork.
pub unsafe fn install(prog: &[libc::sock_filter]) -> std::io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: plain syscalls on this process; fprog outlives the call.
    unsafe {
        if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
