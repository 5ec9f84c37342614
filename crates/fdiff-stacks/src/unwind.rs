//! Unwinding a stopped thread from outside: the modules of /proc/PID/maps with their DWARF
//! CFI (framehop), the thread's stack copied with process_vm_readv, and blazesym for names.

use crate::store::{Frame, MAX_FRAMES, Stack};
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment};
use std::collections::HashMap;

/// Bytes of stack copied above the stack pointer: enough for deep native stacks; an
/// unwind that needs more ends there.
const STACK_COPY: usize = 256 * 1024;
/// Processes whose unwinder (their modules' CFI and text, a few MB each) is kept at most; the
/// one unwound least recently makes room (it is rebuilt if it opens again).
pub const MAX_PROCS: usize = 64;

/// One process's unwinder, rebuilt when a pc falls outside every module (a dlopen since).
struct Proc {
    unwinder: UnwinderX86_64<Vec<u8>>,
    ranges: Vec<std::ops::Range<u64>>,
    /// Unwinds that met a caller outside every module, and at which such miss to reload.
    misses: u64,
    next_reload: u64,
    /// When it was last unwound (a count of unwinds), to evict the stalest.
    used: u64,
}

/// Unwinders per process and a symbolizer with its caches.
pub struct Unwinding {
    procs: HashMap<i32, Proc>,
    /// Unwinds so far.
    clock: u64,
    cache: CacheX86_64,
    buf: Vec<u8>,
    symbolizer: blazesym::symbolize::Symbolizer,
}

impl Default for Unwinding {
    fn default() -> Self {
        Self {
            procs: HashMap::new(),
            clock: 0,
            cache: CacheX86_64::new(),
            buf: vec![0; STACK_COPY],
            symbolizer: blazesym::symbolize::Symbolizer::new(),
        }
    }
}

impl Unwinding {
    /// The process exec'd or exited: its modules are stale.
    pub fn forget(&mut self, tgid: i32) {
        self.procs.remove(&tgid);
    }

    /// Lookup addresses of `tid`'s stack, innermost first.
    pub fn addresses(&mut self, tgid: i32, tid: i32, regs: &libc::user_regs_struct) -> Vec<u64> {
        let pc = regs.rip;
        let known = self
            .procs
            .get(&tgid)
            .is_some_and(|p| p.ranges.iter().any(|r| r.contains(&pc)));
        if !known {
            if !self.procs.contains_key(&tgid) && self.procs.len() >= MAX_PROCS {
                let stalest = self
                    .procs
                    .iter()
                    .min_by_key(|(_, p)| p.used)
                    .map(|(t, _)| *t);
                if let Some(t) = stalest {
                    self.procs.remove(&t);
                }
            }
            self.procs.insert(tgid, load(tgid));
        }
        self.clock += 1;
        if let Some(p) = self.procs.get_mut(&tgid) {
            p.used = self.clock;
        }
        let n = read_mem(tid, regs.rsp, &mut self.buf);
        let out = self.walk(tgid, regs, n);
        // A caller outside every module: a library loaded since (an extension module, libffi
        // under ctypes) whose CFI the unwinder lacks, so the walk past it is a guess. Load the
        // modules again and walk again, at the 1st, 2nd, 4th, … such miss (a frame that is
        // outside every module for good, JIT code say, costs little then).
        let Some(p) = self.procs.get_mut(&tgid) else {
            return out;
        };
        if out
            .iter()
            .skip(1)
            .all(|a| p.ranges.iter().any(|r| r.contains(a)))
        {
            return out;
        }
        p.misses += 1;
        if p.misses < p.next_reload {
            return out;
        }
        let next = p.next_reload.saturating_mul(2);
        let mut fresh = load(tgid);
        fresh.misses = p.misses;
        fresh.next_reload = next;
        fresh.used = p.used;
        *p = fresh;
        self.walk(tgid, regs, n)
    }

    /// The unwind over the first `n` bytes copied into the buffer.
    fn walk(&mut self, tgid: i32, regs: &libc::user_regs_struct, n: usize) -> Vec<u64> {
        let pc = regs.rip;
        let Some(p) = self.procs.get(&tgid) else {
            return vec![pc];
        };
        let sp = regs.rsp;
        let stack = &self.buf[..n];
        let mut read = |addr: u64| -> Result<u64, ()> {
            let off = addr.checked_sub(sp).ok_or(())? as usize;
            let b = stack.get(off..off + 8).ok_or(())?;
            Ok(u64::from_le_bytes(b.try_into().map_err(|_| ())?))
        };
        let uregs = UnwindRegsX86_64::new(pc, sp, regs.rbp);
        let mut it = p
            .unwinder
            .iter_frames(pc, uregs, &mut self.cache, &mut read);
        lookup_addresses(&mut it, pc)
    }

    /// Lookup addresses of a stack already copied (`stack` holds the bytes from `base` up,
    /// `base` ≤ `sp`), innermost first: the eBPF probe's records, unwound after the fact.
    pub fn addresses_from(
        &mut self,
        tgid: i32,
        pc: u64,
        sp: u64,
        bp: u64,
        base: u64,
        stack: &[u8],
    ) -> Vec<u64> {
        let known = self
            .procs
            .get(&tgid)
            .is_some_and(|p| p.ranges.iter().any(|r| r.contains(&pc)));
        if !known {
            self.procs.insert(tgid, load(tgid));
        }
        let Some(p) = self.procs.get(&tgid) else {
            return vec![pc];
        };
        let mut read = |addr: u64| -> Result<u64, ()> {
            let off = addr.checked_sub(base).ok_or(())? as usize;
            let b = stack.get(off..off + 8).ok_or(())?;
            Ok(u64::from_le_bytes(b.try_into().map_err(|_| ())?))
        };
        let mut it = p.unwinder.iter_frames(
            pc,
            UnwindRegsX86_64::new(pc, sp, bp),
            &mut self.cache,
            &mut read,
        );
        lookup_addresses(&mut it, pc)
    }

    /// Names for these addresses of a stopped process (inlined frames expanded).
    pub fn symbolize(&self, tgid: i32, addrs: &[u64]) -> Stack {
        use blazesym::symbolize::{Input, Symbolized, source};
        let mut proc = source::Process::new(blazesym::Pid::from(tgid as u32));
        // map_files needs CAP_SYS_ADMIN on many kernels; the paths in maps are enough.
        proc.map_files = false;
        let src = source::Source::Process(proc);
        let syms = self
            .symbolizer
            .symbolize(&src, Input::AbsAddr(addrs))
            .unwrap_or_default();
        let mut frames = Vec::new();
        for (i, &addr) in addrs.iter().enumerate() {
            match syms.get(i) {
                Some(Symbolized::Sym(s)) => {
                    let module = s.module.as_ref().map(|m| {
                        std::path::Path::new(m)
                            .file_name()
                            .unwrap_or(m)
                            .to_string_lossy()
                            .into_owned()
                    });
                    // blazesym lists inlined calls outer to inner; innermost first here,
                    // each at the location its caller's line reaches it.
                    let mut loc = s.code_info.as_deref().map(code);
                    let mut chain = Vec::new();
                    for f in s.inlined.iter() {
                        chain.push((f.name.to_string(), f.code_info.as_ref().map(code)));
                    }
                    let mut inner = Vec::new();
                    // The location of the innermost inlined function is the address's own.
                    for (name, l) in chain.into_iter().rev() {
                        inner.push(Frame {
                            function: name,
                            offset: 0,
                            file: loc.as_ref().map(|c: &(String, Option<u32>)| c.0.clone()),
                            line: loc.as_ref().and_then(|c| c.1),
                            module: module.clone(),
                            inlined: true,
                            python: false,
                        });
                        loc = l;
                    }
                    frames.extend(inner);
                    frames.push(Frame {
                        function: s.name.to_string(),
                        offset: s.offset as u64,
                        file: loc.as_ref().map(|c| c.0.clone()),
                        line: loc.as_ref().and_then(|c| c.1),
                        module,
                        inlined: false,
                        python: false,
                    });
                }
                _ => frames.push(Frame {
                    function: format!("?@{addr:#x}"),
                    offset: 0,
                    file: None,
                    line: None,
                    module: None,
                    inlined: false,
                    python: false,
                }),
            }
        }
        Stack { frames }
    }
}

fn code(c: &blazesym::symbolize::CodeInfo<'_>) -> (String, Option<u32>) {
    let file = std::path::Path::new(&c.file)
        .file_name()
        .unwrap_or(&c.file)
        .to_string_lossy()
        .into_owned();
    (file, c.line)
}

/// Read `buf.len()` bytes of `tid` at `addr`; the bytes read (short at an unmapped page).
pub fn read_mem(tid: i32, addr: u64, buf: &mut [u8]) -> usize {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: local points at buf, which is valid for its length; remote is only read by the
    // kernel in the other process.
    let n = unsafe { libc::process_vm_readv(tid, &local, 1, &remote, 1, 0) };
    usize::try_from(n).unwrap_or(0)
}

/// One mapping line of /proc/PID/maps.
struct Map {
    start: u64,
    end: u64,
    offset: u64,
    exec: bool,
    path: String,
}

fn maps(tgid: i32) -> Vec<Map> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{tgid}/maps")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let range = it.next()?;
            let perms = it.next()?;
            let offset = u64::from_str_radix(it.next()?, 16).ok()?;
            let _dev = it.next()?;
            let _inode = it.next()?;
            let path: String = it.collect::<Vec<_>>().join(" ");
            let (s, e) = range.split_once('-')?;
            Some(Map {
                start: u64::from_str_radix(s, 16).ok()?,
                end: u64::from_str_radix(e, 16).ok()?,
                offset,
                exec: perms.contains('x'),
                path,
            })
        })
        .collect()
}

/// The modules of a process: every file with an executable mapping.
fn load(tgid: i32) -> Proc {
    let all = maps(tgid);
    let mut unwinder = UnwinderX86_64::new();
    let mut ranges = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for m in all.iter().filter(|m| m.exec && m.path.starts_with('/')) {
        if !seen.insert(m.path.clone()) {
            continue;
        }
        let of_file: Vec<&Map> = all.iter().filter(|x| x.path == m.path).collect();
        let lo = of_file.iter().map(|x| x.start).min().unwrap_or(m.start);
        let hi = of_file.iter().map(|x| x.end).max().unwrap_or(m.end);
        let Some(module) = module(&m.path, m, lo..hi) else {
            continue;
        };
        ranges.push(lo..hi);
        unwinder.add_module(module);
    }
    Proc {
        unwinder,
        ranges,
        misses: 0,
        next_reload: 1,
        used: 0,
    }
}

fn module(path: &str, exec_map: &Map, range: std::ops::Range<u64>) -> Option<Module<Vec<u8>>> {
    let data = std::fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    // The load bias: where the segment holding the executable mapping's file offset sits.
    let seg = file.segments().find(|s| {
        let (off, size) = s.file_range();
        off <= exec_map.offset && exec_map.offset < off + size.max(1)
    })?;
    let (seg_off, _) = seg.file_range();
    let svma_of_map = seg.address() + (exec_map.offset - seg_off);
    let bias = exec_map.start.wrapping_sub(svma_of_map);
    let sect = |name: &str| {
        file.section_by_name(name).and_then(|s| {
            let d = s.data().ok()?.to_vec();
            Some((s.address()..s.address() + s.size(), d))
        })
    };
    let text = sect(".text");
    let eh = sect(".eh_frame");
    let hdr = sect(".eh_frame_hdr");
    let got = file
        .section_by_name(".got")
        .map(|s| s.address()..s.address() + s.size());
    let debug_frame = file
        .section_by_name(".debug_frame")
        .and_then(|s| s.data().ok())
        .map(<[u8]>::to_vec);
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: text.as_ref().map(|t| t.0.clone()),
        text: text.map(|t| t.1),
        got_svma: got,
        eh_frame_svma: eh.as_ref().map(|t| t.0.clone()),
        eh_frame: eh.map(|t| t.1),
        eh_frame_hdr_svma: hdr.as_ref().map(|t| t.0.clone()),
        eh_frame_hdr: hdr.map(|t| t.1),
        debug_frame,
        ..Default::default()
    };
    Some(Module::new(path.to_owned(), range, bias, info))
}

/// The frames' lookup addresses, innermost first, at most [`MAX_FRAMES`]; the pc alone when
/// not even one frame unwinds.
fn lookup_addresses<F: FnMut(u64) -> Result<u64, ()>>(
    it: &mut framehop::UnwindIterator<'_, '_, '_, UnwinderX86_64<Vec<u8>>, F>,
    pc: u64,
) -> Vec<u64> {
    let mut out = Vec::new();
    while let Ok(Some(f)) = it.next() {
        out.push(f.address_for_lookup());
        if out.len() >= MAX_FRAMES {
            break;
        }
    }
    if out.is_empty() {
        out.push(pc);
    }
    out
}
