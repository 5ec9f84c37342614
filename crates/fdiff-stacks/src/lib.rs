//! The stacks that opened fds: `fdiff run --stacks` starts the command under ptrace with a
//! seccomp filter that stops it only on the fd-creating syscalls, unwinds the opening thread
//! from outside (DWARF CFI with framehop over a copied stack), symbolizes with blazesym, and
//! reads the Python frames of a CPython 3.11 thread from its interpreter's structs.
//!
//! Linux x86_64 only; elsewhere [`Tracer::spawn`] says it is not available.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod bpf;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod python;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod seccomp;
mod store;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod tracer;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod unwind;

pub use store::{
    Capture, Drops, Frame, MAX_FDS, MAX_FRAMES, MAX_STACKS, Opened, Stack, StackId, Store,
};
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use tracer::Tracer;

/// When capture starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arming {
    /// From the first syscall of the command.
    Now,
    /// Only for a process once [`Tracer::arm`] names it (a group of it is judged leaking).
    OnLeak,
}
