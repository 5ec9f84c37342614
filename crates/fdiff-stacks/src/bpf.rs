//! `--stacks` on a running process: the eBPF probe of `bpf/fdstacks.bpf.c` (its compiled
//! object is embedded), loaded with a minimal loader over the bpf() syscall, its ring buffer
//! drained by a thread that unwinds each open from the copied user stack and fills a
//! [`Store`] like the ptrace tracer does.
//!
//! The loader is ours rather than a crate's: the object needs only three legacy maps, two
//! raw-tracepoint programs and map-fd relocations, which is ~300 lines here against a
//! dependency tree to compile.

use crate::store::{Opened, Store};
use crate::unwind::Unwinding;
use std::collections::HashSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The probe, built by scripts/build-bpf.sh from bpf/fdstacks.bpf.c.
static OBJECT: &[u8] = include_bytes!("../bpf/fdstacks.bpf.o");

/// Ring buffer bytes (a power of two of pages): about 1,000 opens of 8 KiB of stack queued.
pub const RING_BYTES: u32 = 8 << 20;

/// The ring's size: [`RING_BYTES`], or `FDIFF_STACKS_RING_BYTES` (a power of two of pages;
/// the tests make it too small to hold a record, to see drops counted).
fn ring_bytes() -> u32 {
    std::env::var("FDIFF_STACKS_RING_BYTES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|v| v.is_power_of_two() && *v >= 4096)
        .unwrap_or(RING_BYTES)
}

const BPF_MAP_CREATE: i32 = 0;
const BPF_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_MAP_UPDATE_ELEM: i32 = 2;
const BPF_MAP_DELETE_ELEM: i32 = 3;
const BPF_PROG_LOAD: i32 = 5;
const BPF_RAW_TRACEPOINT_OPEN: i32 = 17;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
const BPF_MAP_TYPE_RINGBUF: u32 = 27;
const BPF_PSEUDO_MAP_FD: u8 = 1;

// The record's layout (struct record in the C source).
const KIND_OPEN: u32 = 1;
const KIND_CLOSE: u32 = 2;
const KIND_EXEC: u32 = 3;
const HEAD: usize = 72 + PATH;
const PATH: usize = 256;

/// A bpf() attribute block: zeroed, fields written at their offsets.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Self {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

fn bpf(cmd: i32, attr: &mut Attr) -> std::io::Result<i64> {
    // SAFETY: attr is a valid, initialized block of the size passed; pointers inside it
    // point at buffers the caller keeps alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this fd to us, and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Why the probe could not be set up; the message is the user's line.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

struct Maps {
    armed: OwnedFd,
    events: OwnedFd,
    drops: OwnedFd,
}

struct Progs {
    exit: OwnedFd,
    enter: OwnedFd,
    exec: OwnedFd,
}

fn perm_error(what: &str, e: &std::io::Error) -> Unavailable {
    if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
        Unavailable(format!(
            "--stacks on a running process needs root or CAP_BPF+CAP_PERFMON ({what}: {e})"
        ))
    } else {
        Unavailable(format!(
            "--stacks on a running process: the eBPF probe is not available ({what}: {e})"
        ))
    }
}

/// Create the object's maps and load its programs (not attached yet).
fn load() -> Result<(Maps, Progs), Unavailable> {
    use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};
    let bad = |what: &str| {
        Unavailable(format!(
            "--stacks: the embedded eBPF object is bad ({what})"
        ))
    };
    let file = object::File::parse(OBJECT).map_err(|_| bad("not ELF"))?;
    let maps_sec = file.section_by_name("maps").ok_or_else(|| bad("no maps"))?;
    let maps_data = maps_sec.data().map_err(|_| bad("maps"))?;
    let mut by_name: Vec<(String, OwnedFd)> = Vec::new();
    for sym in file.symbols() {
        if sym.section_index() != Some(maps_sec.index()) {
            continue;
        }
        let name = sym.name().map_err(|_| bad("symbol"))?.to_owned();
        let off = sym.address() as usize;
        let def = maps_data.get(off..off + 20).ok_or_else(|| bad("map def"))?;
        let f = |i: usize| u32::from_ne_bytes([def[i], def[i + 1], def[i + 2], def[i + 3]]);
        let (ty, key, value, mut max) = (f(0), f(4), f(8), f(12));
        if ty == BPF_MAP_TYPE_RINGBUF {
            max = ring_bytes();
        }
        let mut a = Attr::new();
        a.u32(0, ty).u32(4, key).u32(8, value).u32(12, max);
        let name16 = name.as_bytes();
        let n = name16.len().min(15);
        a.0[28..28 + n].copy_from_slice(&name16[..n]);
        let fd = bpf(BPF_MAP_CREATE, &mut a).map_err(|e| perm_error("map create", &e))?;
        by_name.push((name, owned(fd)));
    }
    let license = c"GPL";
    let mut progs = Vec::new();
    for sec in file.sections() {
        let Ok(sname) = sec.name() else { continue };
        let Some(tp) = sname.strip_prefix("raw_tracepoint/") else {
            continue;
        };
        let mut insns = sec.data().map_err(|_| bad("program"))?.to_vec();
        for (off, rel) in sec.relocations() {
            let RelocationTarget::Symbol(si) = rel.target() else {
                return Err(bad("relocation"));
            };
            let sym = file.symbol_by_index(si).map_err(|_| bad("symbol"))?;
            let name = sym.name().map_err(|_| bad("symbol"))?;
            let fd = by_name
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, fd)| fd.as_raw_fd())
                .ok_or_else(|| bad("relocation to no map"))?;
            let off = off as usize;
            let insn = insns
                .get_mut(off..off + 8)
                .ok_or_else(|| bad("relocation"))?;
            insn[1] = (insn[1] & 0x0f) | (BPF_PSEUDO_MAP_FD << 4);
            insn[4..8].copy_from_slice(&fd.to_ne_bytes());
        }
        let mut log = vec![0u8; 64 * 1024];
        let mut a = Attr::new();
        a.u32(0, BPF_PROG_TYPE_RAW_TRACEPOINT)
            .u32(4, (insns.len() / 8) as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, 1)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64);
        let fd = match bpf(BPF_PROG_LOAD, &mut a) {
            Ok(fd) => fd,
            Err(e) => {
                let text = String::from_utf8_lossy(&log);
                let text = text.trim_end_matches('\0');
                if std::env::var_os("FDIFF_BPF_LOG").is_some() {
                    eprintln!("{text}");
                }
                // The verifier's reason is the last line before its statistics.
                let reason = text
                    .lines()
                    .rev()
                    .find(|l| {
                        let l = l.trim();
                        !l.is_empty()
                            && !l.starts_with("processed ")
                            && !l.starts_with("verification time")
                    })
                    .map(str::to_owned);
                return Err(match reason {
                    Some(r) if !text.is_empty() => Unavailable(format!(
                        "--stacks on a running process: the kernel rejected the eBPF probe \
                         ({tp}: {r}: {e})"
                    )),
                    _ => perm_error("program load", &e),
                });
            }
        };
        progs.push((tp.to_owned(), owned(fd)));
    }
    let mut take_map = |n: &str| {
        by_name
            .iter()
            .position(|(x, _)| x == n)
            .map(|i| by_name.swap_remove(i).1)
            .ok_or_else(|| bad(n))
    };
    let maps = Maps {
        armed: take_map("armed")?,
        events: take_map("events")?,
        drops: take_map("drops")?,
    };
    let mut take_prog = |n: &str| {
        progs
            .iter()
            .position(|(x, _)| x == n)
            .map(|i| progs.swap_remove(i).1)
            .ok_or_else(|| bad(n))
    };
    let p = Progs {
        exit: take_prog("sys_exit")?,
        enter: take_prog("sys_enter")?,
        exec: take_prog("sched_process_exec")?,
    };
    Ok((maps, p))
}

fn attach(tp: &std::ffi::CStr, prog: &OwnedFd) -> std::io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u64(0, tp.as_ptr() as u64).u32(8, prog.as_raw_fd() as u32);
    bpf(BPF_RAW_TRACEPOINT_OPEN, &mut a).map(owned)
}

fn map_update(map: &OwnedFd, key: &[u8], value: &[u8]) -> std::io::Result<()> {
    let mut a = Attr::new();
    a.u32(0, map.as_raw_fd() as u32)
        .u64(8, key.as_ptr() as u64)
        .u64(16, value.as_ptr() as u64);
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
}

fn map_delete(map: &OwnedFd, key: &[u8]) {
    let mut a = Attr::new();
    a.u32(0, map.as_raw_fd() as u32).u64(8, key.as_ptr() as u64);
    let _ = bpf(BPF_MAP_DELETE_ELEM, &mut a);
}

fn map_lookup(map: &OwnedFd, key: &[u8], value: &mut [u8]) -> bool {
    let mut a = Attr::new();
    a.u32(0, map.as_raw_fd() as u32)
        .u64(8, key.as_ptr() as u64)
        .u64(16, value.as_mut_ptr() as u64);
    bpf(BPF_MAP_LOOKUP_ELEM, &mut a).is_ok()
}

/// The possible CPUs (a per-CPU map's value has one slot each).
fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| {
            s.trim()
                .split(',')
                .map(|r| match r.split_once('-') {
                    Some((a, b)) => Some(b.parse::<usize>().ok()? - a.parse::<usize>().ok()? + 1),
                    None => r.parse::<usize>().ok().map(|_| 1),
                })
                .sum::<Option<usize>>()
        })
        .unwrap_or(1)
        .max(1)
}

struct Shared {
    store: Mutex<Store>,
    maps: Maps,
    progs: Progs,
    /// The raw tracepoints' links, once something is armed (none before: unarmed costs
    /// nothing).
    links: Mutex<Vec<OwnedFd>>,
    armed: Mutex<HashSet<i32>>,
    stop: AtomicBool,
    /// The draining thread has flushed and ended.
    done: Mutex<bool>,
    done_cv: std::sync::Condvar,
    /// Opens the ring buffer held but userspace could not use (short record).
    bad_records: AtomicU64,
}

/// The probe loaded for a watch (clones share it).
#[derive(Clone)]
pub struct Probe {
    shared: Arc<Shared>,
}

impl Probe {
    /// Load the probe and start the thread that drains it; nothing is attached until
    /// [`Probe::arm`].
    pub fn load() -> Result<Probe, Unavailable> {
        let (maps, progs) = load()?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            maps,
            progs,
            links: Mutex::new(Vec::new()),
            armed: Mutex::new(HashSet::new()),
            stop: AtomicBool::new(false),
            done: Mutex::new(false),
            done_cv: std::sync::Condvar::new(),
            bad_records: AtomicU64::new(0),
        });
        let ring = Ring::map(&shared.maps.events, ring_bytes() as usize)
            .map_err(|e| perm_error("ring buffer mmap", &e))?;
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("fdiff-bpf".into())
            .spawn(move || drain(ring, &sh))
            .map_err(|e| Unavailable(format!("--stacks: no thread for the probe ({e})")))?;
        Ok(Probe { shared })
    }

    /// Capture from now on for `tgid`. The first arm attaches the probe.
    pub fn arm(&self, tgid: i32) -> Result<(), Unavailable> {
        let mut armed = self.shared.armed.lock().unwrap_or_else(|e| e.into_inner());
        if armed.contains(&tgid) {
            return Ok(());
        }
        map_update(&self.shared.maps.armed, &tgid.to_ne_bytes(), &[1])
            .map_err(|e| perm_error("arming", &e))?;
        armed.insert(tgid);
        let mut links = self.shared.links.lock().unwrap_or_else(|e| e.into_inner());
        if links.is_empty() {
            let exit = attach(c"sys_exit", &self.shared.progs.exit)
                .map_err(|e| perm_error("attach sys_exit", &e))?;
            let enter = attach(c"sys_enter", &self.shared.progs.enter)
                .map_err(|e| perm_error("attach sys_enter", &e))?;
            let exec = attach(c"sched_process_exec", &self.shared.progs.exec)
                .map_err(|e| perm_error("attach sched_process_exec", &e))?;
            links.push(exit);
            links.push(enter);
            links.push(exec);
        }
        Ok(())
    }

    /// Stop capturing for `tgid` (it exited; its pid may be reused).
    pub fn disarm(&self, tgid: i32) {
        let mut armed = self.shared.armed.lock().unwrap_or_else(|e| e.into_inner());
        if armed.remove(&tgid) {
            map_delete(&self.shared.maps.armed, &tgid.to_ne_bytes());
        }
    }

    /// Whether `tgid` is armed.
    pub fn is_armed(&self, tgid: i32) -> bool {
        self.shared
            .armed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&tgid)
    }

    /// Detach, and wait (a few seconds at most) for the draining thread to unwind what it
    /// still holds, so the store is whole for the report.
    pub fn stop(&self) {
        self.shared
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.shared.stop.store(true, Ordering::Release);
        let done = self.shared.done.lock().unwrap_or_else(|e| e.into_inner());
        let _ =
            self.shared
                .done_cv
                .wait_timeout_while(done, std::time::Duration::from_secs(5), |d| !*d);
    }

    /// Run `f` on the store, with the kernel's drop counters added in.
    pub fn with_store<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        let (open_drops, close_drops) = self.kernel_drops();
        let mut s = self.shared.store.lock().unwrap_or_else(|e| e.into_inner());
        let before = s.drops;
        // Opens the kernel could not queue were never remembered: counted as fds dropped;
        // a lost close leaves a stale entry, which attribution checks against the target.
        s.drops.fds += open_drops + close_drops + self.shared.bad_records.load(Ordering::Relaxed);
        let r = f(&s);
        s.drops = before;
        r
    }

    /// The per-CPU drop counters, summed: (opens, closes) the ring buffer had no room for.
    pub fn kernel_drops(&self) -> (u64, u64) {
        let n = possible_cpus();
        let mut sum = [0u64; 2];
        for (i, slot) in sum.iter_mut().enumerate() {
            let mut v = vec![0u8; 8 * n];
            if map_lookup(&self.shared.maps.drops, &(i as u32).to_ne_bytes(), &mut v) {
                *slot = v
                    .chunks_exact(8)
                    .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
                    .sum();
            }
        }
        (sum[0], sum[1])
    }
}

/// The ring buffer mapped: the consumer page (ours to write), and the producer page with the
/// data mapped twice after it (so a record that wraps reads as one slice).
struct Ring {
    consumer: *mut u8,
    producer: *const u8,
    size: usize,
    page: usize,
    fd: i32,
}

// SAFETY: the mappings are owned by the Ring and only used from the draining thread.
unsafe impl Send for Ring {}

impl Ring {
    fn map(fd: &OwnedFd, size: usize) -> std::io::Result<Ring> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: mapping the ring buffer map's fd as the kernel lays it out; results are
        // checked.
        let consumer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if consumer == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: as above.
        let producer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page + 2 * size,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                page as libc::off_t,
            )
        };
        if producer == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            // SAFETY: unmapping what was mapped above.
            unsafe { libc::munmap(consumer, page) };
            return Err(e);
        }
        Ok(Ring {
            consumer: consumer.cast(),
            producer: producer.cast::<u8>().cast_const(),
            size,
            page,
            fd: fd.as_raw_fd(),
        })
    }

    /// Hand each complete record to `f`; returns how many.
    fn consume(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        const BUSY: u32 = 1 << 31;
        const DISCARD: u32 = 1 << 30;
        // SAFETY: the positions are the first u64 of their pages, which the kernel updates
        // atomically; the data area is page + 2 * size bytes from `producer`.
        unsafe {
            let cons = &*(self.consumer as *const AtomicU64);
            let prod = &*(self.producer as *const AtomicU64);
            let data = self.producer.add(self.page);
            let mut c = cons.load(Ordering::Acquire);
            let mut n = 0;
            loop {
                let p = prod.load(Ordering::Acquire);
                if c >= p {
                    break;
                }
                let at = (c as usize) & (self.size - 1);
                let hdr = &*(data.add(at) as *const std::sync::atomic::AtomicU32);
                let len = hdr.load(Ordering::Acquire);
                if len & BUSY != 0 {
                    break;
                }
                let real = (len & !(BUSY | DISCARD)) as usize;
                if len & DISCARD == 0 && real <= self.size {
                    f(std::slice::from_raw_parts(data.add(at + 8), real));
                    n += 1;
                }
                c += ((real + 8 + 7) & !7) as u64;
                cons.store(c, Ordering::Release);
            }
            n
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping the two mappings made in Ring::map.
        unsafe {
            libc::munmap(self.consumer.cast(), self.page);
            libc::munmap(self.producer.cast_mut().cast(), self.page + 2 * self.size);
        }
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

/// Unix time now minus CLOCK_MONOTONIC now: turns the probe's times into the store's.
fn mono_to_unix() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let mono = ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    unix - mono
}

/// How often the ring is drained when the probe does not wake the reader.
const POLL_MS: i32 = 10;
/// An open is unwound once its fd has stayed open this long: most fds of a busy healthy path
/// are closed sooner, and unwinding each would cost a core as much as the traced loop.
const DEFER: std::time::Duration = std::time::Duration::from_millis(50);
/// Opens held back at most (each holds its stack copy, ~8.3 KiB: 4.2 MiB in all): past it,
/// unwound at once.
const MAX_PENDING: usize = 512;
/// Of the opens closed before [`DEFER`], at most this many a second are unwound anyway, so the
/// healthy path still shows beside the leaking one (its count is then a sample).
const CLOSED_PER_SEC: u32 = 200;

/// The draining thread's state.
struct Drainer<'a> {
    sh: &'a Shared,
    unwinding: Unwinding,
    offset: f64,
    /// (tgid, fd) → its open record, not unwound yet.
    pending: std::collections::HashMap<(i32, i32), (std::time::Instant, Vec<u8>)>,
    budget: u32,
    budget_at: std::time::Instant,
}

fn drain(mut ring: Ring, sh: &Shared) {
    let mut d = Drainer {
        sh,
        unwinding: Unwinding::default(),
        offset: mono_to_unix(),
        pending: std::collections::HashMap::new(),
        budget: CLOSED_PER_SEC,
        budget_at: std::time::Instant::now(),
    };
    loop {
        let stopping = sh.stop.load(Ordering::Acquire);
        let mut pfd = libc::pollfd {
            fd: ring.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // The probe wakes us only when the ring is a quarter full (a wakeup per record would
        // cost the traced thread more than the record): otherwise every POLL_MS.
        if !stopping {
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
        }
        ring.consume(|rec| d.record(rec));
        d.due(stopping);
        if stopping {
            break;
        }
    }
    *sh.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
    sh.done_cv.notify_all();
}

impl Drainer<'_> {
    fn record(&mut self, rec: &[u8]) {
        let kind = u32_at(rec, 0);
        let tgid = u32_at(rec, 4) as i32;
        let fd = u64_at(rec, 16) as i64;
        let fd2 = u64_at(rec, 24) as i64;
        match kind {
            KIND_CLOSE => self.close(tgid, fd, fd2.max(fd)),
            KIND_EXEC => {
                // Unwound against the old image's modules while they are still cached.
                let keys: Vec<_> = self
                    .pending
                    .keys()
                    .filter(|k| k.0 == tgid)
                    .copied()
                    .collect();
                for k in keys {
                    if let Some((_, r)) = self.pending.remove(&k) {
                        self.open(&r);
                    }
                }
                self.unwinding.forget(tgid);
                self.sh
                    .store
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .forget_addresses(tgid);
            }
            KIND_OPEN if rec.len() >= HEAD => {
                // pipe/socketpair (two fds) and a full queue: now.
                if fd2 >= 0 || fd < 0 || self.pending.len() >= MAX_PENDING {
                    self.open(rec);
                } else if let Some((_, old)) = self
                    .pending
                    .insert((tgid, fd as i32), (std::time::Instant::now(), rec.to_vec()))
                {
                    // The number came back without a close seen (a lost close record, or
                    // dup2 over it): the old open was closed.
                    self.closed_sample(&old, tgid, fd);
                }
            }
            _ => {
                self.sh.bad_records.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn close(&mut self, tgid: i32, lo: i64, hi: i64) {
        let keys: Vec<(i32, i32)> = if hi - lo < 64 {
            (lo..=hi).map(|f| (tgid, f as i32)).collect()
        } else {
            self.pending
                .keys()
                .filter(|(t, f)| *t == tgid && (lo..=hi).contains(&i64::from(*f)))
                .copied()
                .collect()
        };
        for k in &keys {
            if let Some((_, r)) = self.pending.remove(k) {
                self.closed_sample(&r, tgid, i64::from(k.1));
            }
        }
        let mut s = self.sh.store.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<(i32, i32)> = if hi - lo < 64 {
            keys
        } else {
            s.open
                .keys()
                .filter(|(t, f)| *t == tgid && (lo..=hi).contains(&i64::from(*f)))
                .copied()
                .collect()
        };
        for k in gone {
            if let Some(o) = s.open.remove(&k) {
                *s.closed.entry((tgid, o.stack, o.target)).or_insert(0) += 1;
            }
        }
    }

    /// An open closed before it was unwound: unwound within the budget, and counted closed.
    fn closed_sample(&mut self, rec: &[u8], tgid: i32, fd: i64) {
        let now = std::time::Instant::now();
        if now.duration_since(self.budget_at) >= std::time::Duration::from_secs(1) {
            self.budget = CLOSED_PER_SEC;
            self.budget_at = now;
        }
        if self.budget == 0 {
            return;
        }
        self.budget -= 1;
        self.open(rec);
        let mut s = self.sh.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = s.open.remove(&(tgid, fd as i32)) {
            *s.closed.entry((tgid, o.stack, o.target)).or_insert(0) += 1;
        }
    }

    /// Unwind the opens held long enough (all of them when `all`).
    fn due(&mut self, all: bool) {
        let now = std::time::Instant::now();
        let keys: Vec<(i32, i32)> = self
            .pending
            .iter()
            .filter(|(_, (at, _))| all || now.duration_since(*at) >= DEFER)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some((_, r)) = self.pending.remove(&k) {
                self.open(&r);
            }
        }
    }

    /// Unwind and store one open record.
    fn open(&mut self, rec: &[u8]) {
        let sh = self.sh;
        let tgid = u32_at(rec, 4) as i32;
        let tid = u32_at(rec, 8) as i32;
        let nr = u32_at(rec, 12);
        let fd = u64_at(rec, 16) as i64;
        let fd2 = u64_at(rec, 24) as i64;
        let time = u64_at(rec, 32) as f64 * 1e-9 + self.offset;
        let (ip, sp, bp) = (u64_at(rec, 40), u64_at(rec, 48), u64_at(rec, 56));
        let len = (u64_at(rec, 64) as usize).min(rec.len().saturating_sub(HEAD));
        let Some(stack) = rec.get(HEAD..HEAD + len) else {
            return;
        };
        let path = rec.get(72..72 + PATH).unwrap_or(&[]);
        let path = String::from_utf8_lossy(&path[..path.iter().position(|&b| b == 0).unwrap_or(0)]);
        let raw = self
            .unwinding
            .addresses_from(tgid, ip, sp, bp, sp & !4095, stack);
        let known = sh
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .id_of(tgid, &raw);
        let id = match known {
            Some(id) => Some(id),
            None => {
                // The process runs on: symbolized against its maps of now, once per distinct
                // stack.
                let st = self.unwinding.symbolize(tgid, &raw);
                sh.store
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .add(tgid, raw, st)
            }
        };
        let Some(id) = id else { return };
        for f in [fd, fd2] {
            if f < 0 {
                continue;
            }
            // A closed fd's close record has been seen (it is not pending any more); an open
            // one's link is its target.
            let target = std::fs::read_link(format!("/proc/{tgid}/fd/{f}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| gone_target(nr, &path, tgid));
            sh.store.lock().unwrap_or_else(|e| e.into_inner()).opened(
                tgid,
                f as i32,
                Opened {
                    stack: id,
                    tid,
                    time,
                    target,
                },
            );
        }
    }
}

/// The target of an fd closed before its link could be read: the opened path (made
/// absolute against the process's cwd of now), or the kind its syscall makes.
fn gone_target(nr: u32, path: &str, tgid: i32) -> String {
    let nr = i64::from(nr);
    if !path.is_empty() {
        if path.starts_with('/') {
            return path.to_owned();
        }
        if let Ok(cwd) = std::fs::read_link(format!("/proc/{tgid}/cwd")) {
            return cwd.join(path).to_string_lossy().into_owned();
        }
        return path.to_owned();
    }
    let socket = [
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_accept,
        libc::SYS_accept4,
    ];
    if socket.contains(&nr) {
        "socket:".to_owned()
    } else if nr == libc::SYS_pipe || nr == libc::SYS_pipe2 {
        "pipe:".to_owned()
    } else {
        String::new()
    }
}
