//! Python frames of a stopped thread, read from outside (py-spy's way): `_PyRuntime` from the
//! ELF symbols of libpython or the python binary, interpreters → thread states, the one whose
//! `native_thread_id` is the stopped tid (the GIL is usually released around an open, so the
//! current tstate would be another thread's), then its frame chain with process_vm_readv.
//!
//! CPython 3.11 on x86_64 only (struct offsets are per version); other versions are skipped
//! with one note per library and the stack stays native.

use crate::store::Frame;
use crate::unwind::read_mem;
use object::{Object, ObjectSegment, ObjectSymbol};
use std::collections::HashMap;
use std::rc::Rc;

/// Python frames read per stack at most (a deeper chain is cut there).
const MAX_PY_FRAMES: usize = 64;
/// Code objects cached per process at most; the cache is emptied when it is full (code objects
/// of a long-running process are few and stable, so this rarely happens).
const MAX_CODES: usize = 8_192;
/// Interpreters and thread states walked at most (the lists are read while other threads run).
const MAX_INTERPRETERS: usize = 16;
const MAX_THREADS: usize = 8_192;
/// Longest name or file name read.
const MAX_STR: usize = 4_096;
/// Longest location table read.
const MAX_LINETABLE: usize = 1 << 20;

/// Struct offsets of one CPython version (x86_64), checked against the interpreter's DWARF
/// with gdb (`p &((PyThreadState*)0)->native_thread_id` and so on).
struct Offsets {
    runtime_interpreters_head: u64,
    interp_next: u64,
    interp_threads_head: u64,
    tstate_next: u64,
    tstate_cframe: u64,
    tstate_native_thread_id: u64,
    /// Bytes of a thread state read to get the three fields above.
    tstate_size: usize,
    cframe_current_frame: u64,
    frame_code: u64,
    frame_previous: u64,
    frame_prev_instr: u64,
    frame_is_entry: u64,
    frame_size: usize,
    code_firstlineno: u64,
    code_filename: u64,
    code_name: u64,
    code_qualname: u64,
    code_linetable: u64,
    code_code_adaptive: u64,
    code_size: usize,
    /// PyASCIIObject's size: where a compact ASCII string's characters start.
    ascii_size: u64,
    /// PyCompactUnicodeObject's size: where other compact strings' characters start.
    compact_size: u64,
}

const PY311: Offsets = Offsets {
    runtime_interpreters_head: 0x28,
    interp_next: 0x0,
    interp_threads_head: 0x10,
    tstate_next: 0x8,
    tstate_cframe: 0x38,
    tstate_native_thread_id: 0xa0,
    tstate_size: 0xa8,
    cframe_current_frame: 0x8,
    frame_code: 0x20,
    frame_previous: 0x30,
    frame_prev_instr: 0x38,
    frame_is_entry: 0x44,
    frame_size: 0x48,
    code_firstlineno: 0x48,
    code_filename: 0x70,
    code_name: 0x78,
    code_qualname: 0x80,
    code_linetable: 0x88,
    code_code_adaptive: 0xb8,
    code_size: 0xc0,
    ascii_size: 48,
    compact_size: 72,
};

/// One Python frame as read: enough to key a stack and name it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPyFrame {
    /// The code object's address.
    pub code: u64,
    /// Its name, file and table objects' addresses mixed: a code object freed and another
    /// made at its address (module code is freed after the import) is told apart.
    pub ident: u64,
    /// Byte offset of the instruction executing (-1 before the first).
    pub instr: i64,
    /// The first frame of one C call of the eval loop (`_PyEval_EvalFrameDefault`).
    pub entry: bool,
}

/// A code object's name, file and location table.
struct Code {
    name: String,
    file: String,
    first_line: i64,
    linetable: Vec<u8>,
}

/// Symbols of one libpython or python binary (file addresses).
#[derive(Clone)]
struct LibSyms {
    runtime: u64,
    version: Option<u64>,
    code_type: Option<u64>,
    /// Load segments: (file offset, file size, address).
    segs: Vec<(u64, u64, u64)>,
}

/// A Python process.
struct Interp {
    offsets: &'static Offsets,
    runtime: u64,
    code_type: Option<u64>,
    /// tid → its thread state's address (checked on each use).
    tstates: HashMap<i32, u64>,
    codes: HashMap<u64, (u64, Rc<Code>)>,
}

enum State {
    /// No CPython found in the maps yet: looked again at the `next`th capture (1, 2, 4, …), so
    /// an interpreter mapped later (by the loader, or a dlopen) is found at little cost.
    Not {
        seen: u64,
        next: u64,
    },
    Py(Box<Interp>),
    /// A CPython whose version has no offsets here.
    Unsupported,
}

/// Python frame readers for every traced process.
pub struct Python {
    enabled: bool,
    procs: HashMap<i32, State>,
    libs: HashMap<String, Option<LibSyms>>,
    /// One line per unsupported interpreter, for the report.
    pub notes: Vec<String>,
}

impl Default for Python {
    fn default() -> Self {
        Self {
            // For measuring what Python frames cost (bench/cost.sh).
            enabled: std::env::var_os("FDIFF_PYFRAMES").is_none_or(|v| v != "0"),
            procs: HashMap::new(),
            libs: HashMap::new(),
            notes: Vec::new(),
        }
    }
}

impl Python {
    /// The process exec'd or exited.
    pub fn forget(&mut self, tgid: i32) {
        self.procs.remove(&tgid);
    }

    /// The Python frames of stopped `tid`, innermost first (empty when it runs no Python).
    pub fn walk(&mut self, tgid: i32, tid: i32) -> Vec<RawPyFrame> {
        if !self.enabled {
            return Vec::new();
        }
        let state = self
            .procs
            .entry(tgid)
            .or_insert(State::Not { seen: 0, next: 1 });
        if let State::Not { seen, next } = state {
            *seen += 1;
            if *seen < *next {
                return Vec::new();
            }
            *next = next.saturating_mul(2);
            match find(tgid, &mut self.libs) {
                Found::No => return Vec::new(),
                Found::Unsupported(note) => {
                    if !self.notes.contains(&note) {
                        self.notes.push(note);
                    }
                    *state = State::Unsupported;
                    return Vec::new();
                }
                Found::Py(i) => *state = State::Py(i),
            }
        }
        let State::Py(interp) = state else {
            return Vec::new();
        };
        let Some(cf) = interp.tstate(tid) else {
            return Vec::new();
        };
        interp.frames(tid, cf)
    }

    /// Python frames for `raw`, named (innermost first), each with whether it is an entry.
    pub fn name(&mut self, tgid: i32, tid: i32, raw: &[RawPyFrame]) -> Vec<(Frame, bool)> {
        let Some(State::Py(interp)) = self.procs.get_mut(&tgid) else {
            return Vec::new();
        };
        raw.iter()
            .map(|r| {
                let frame = match interp.code(tid, r.code, r.ident) {
                    Some(c) => Frame {
                        function: c.name.clone(),
                        offset: 0,
                        file: Some(c.file.clone()),
                        line: line_of(&c.linetable, c.first_line, r.instr)
                            .and_then(|l| u32::try_from(l).ok()),
                        module: None,
                        inlined: false,
                        python: true,
                    },
                    None => Frame {
                        function: format!("?@{:#x}", r.code),
                        offset: 0,
                        file: None,
                        line: None,
                        module: None,
                        inlined: false,
                        python: true,
                    },
                };
                (frame, r.entry)
            })
            .collect()
    }
}

/// Python frames put where they ran: each C call of the eval loop (a native
/// `_PyEval_EvalFrameDefault` frame) ran the Python frames up to and including the next entry
/// frame, so they go just inside it. Frames left over (the native unwind ended early) go last.
pub fn interleave(native: Vec<Frame>, py: Vec<(Frame, bool)>) -> Vec<Frame> {
    if py.is_empty() {
        return native;
    }
    let mut py = py.into_iter();
    let mut out = Vec::with_capacity(native.len() + py.len());
    for f in native {
        if !f.inlined && f.function == "_PyEval_EvalFrameDefault" {
            for (p, entry) in py.by_ref() {
                out.push(p);
                if entry {
                    break;
                }
            }
        }
        out.push(f);
    }
    out.extend(py.map(|(p, _)| p));
    out
}

enum Found {
    No,
    Unsupported(String),
    Py(Box<Interp>),
}

/// The interpreter of `tgid`, from the symbols of a mapped libpython or python binary.
fn find(tgid: i32, libs: &mut HashMap<String, Option<LibSyms>>) -> Found {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{tgid}/maps")) else {
        return Found::No;
    };
    // path → (lowest file offset mapped, its start)
    let mut files: Vec<(String, u64, u64)> = Vec::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let (Some(range), Some(_perms), Some(off)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let path = it.nth(2).unwrap_or("");
        let base = path.rsplit('/').next().unwrap_or("");
        if !path.starts_with('/') || !(base.starts_with("libpython3") || base.starts_with("python"))
        {
            continue;
        }
        let (Some(start), Ok(off)) = (
            range
                .split_once('-')
                .and_then(|(s, _)| u64::from_str_radix(s, 16).ok()),
            u64::from_str_radix(off, 16),
        ) else {
            continue;
        };
        match files.iter_mut().find(|f| f.0 == path) {
            Some(f) if off < f.1 => (f.1, f.2) = (off, start),
            Some(_) => {}
            None => files.push((path.to_owned(), off, start)),
        }
    }
    for (path, off, start) in files {
        let syms = libs
            .entry(path.clone())
            .or_insert_with(|| lib_syms(&path))
            .clone();
        let Some(syms) = syms else { continue };
        let Some(bias) = lib_bias(&syms, off, start) else {
            continue;
        };
        let version = syms.version.and_then(|v| {
            let mut b = [0u8; 4];
            (read_mem(tgid, bias.wrapping_add(v), &mut b) == 4).then(|| u32::from_le_bytes(b))
        });
        let (major, minor) = match version {
            Some(v) => (v >> 24, (v >> 16) & 0xff),
            // No Py_Version: 3.10 or older.
            None => (3, 0),
        };
        if (major, minor) != (3, 11) {
            let v = if minor == 0 {
                "older than 3.11".to_owned()
            } else {
                format!("{major}.{minor}")
            };
            return Found::Unsupported(format!(
                "python frames not available for CPython {v} ({path}): only 3.11 is known; \
                 native frames only"
            ));
        }
        return Found::Py(Box::new(Interp {
            offsets: &PY311,
            runtime: bias.wrapping_add(syms.runtime),
            code_type: syms.code_type.map(|c| bias.wrapping_add(c)),
            tstates: HashMap::new(),
            codes: HashMap::new(),
        }));
    }
    Found::No
}

/// `_PyRuntime`, `Py_Version` and `PyCode_Type` of one file, or None without `_PyRuntime`.
fn lib_syms(path: &str) -> Option<LibSyms> {
    let data = std::fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let mut runtime = None;
    let mut version = None;
    let mut code_type = None;
    for s in file.dynamic_symbols().chain(file.symbols()) {
        match s.name() {
            Ok("_PyRuntime") => runtime = Some(s.address()),
            Ok("Py_Version") => version = Some(s.address()),
            Ok("PyCode_Type") => code_type = Some(s.address()),
            _ => {}
        }
    }
    let segs = file
        .segments()
        .map(|s| {
            let (o, size) = s.file_range();
            (o, size, s.address())
        })
        .collect();
    Some(LibSyms {
        runtime: runtime?,
        version,
        code_type,
        segs,
    })
}

/// The load bias of a file given where its lowest mapped file offset starts.
fn lib_bias(syms: &LibSyms, off: u64, start: u64) -> Option<u64> {
    let &(seg_off, _, addr) = syms
        .segs
        .iter()
        .find(|&&(o, size, _)| o <= off && off < o + size.max(1))?;
    Some(start.wrapping_sub(addr + (off - seg_off)))
}

/// A code object's identity from its header: its qualname, file name and location table
/// objects' addresses (never 0 for a real code object).
fn ident(o: &Offsets, b: &[u8]) -> u64 {
    (u64_at(b, o.code_qualname)
        ^ u64_at(b, o.code_filename).rotate_left(21)
        ^ u64_at(b, o.code_linetable).rotate_left(42))
    .max(1)
}

fn u64_at(b: &[u8], off: u64) -> u64 {
    let o = off as usize;
    b.get(o..o + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// Read `a.len()` bytes at `at` and, when given, `b.len()` bytes at `bt`, in one
/// process_vm_readv: the bytes read in all (the kernel stops at the first short piece).
fn read_two(tid: i32, at: u64, a: &mut [u8], b: Option<(u64, &mut Vec<u8>)>) -> usize {
    if at == 0 {
        return 0;
    }
    let mut local = vec![libc::iovec {
        iov_base: a.as_mut_ptr().cast(),
        iov_len: a.len(),
    }];
    let mut remote = vec![libc::iovec {
        iov_base: at as *mut libc::c_void,
        iov_len: a.len(),
    }];
    if let Some((bt, b)) = b {
        local.push(libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        });
        remote.push(libc::iovec {
            iov_base: bt as *mut libc::c_void,
            iov_len: b.len(),
        });
    }
    // SAFETY: each local iovec points at a live buffer of its length; the remote ones are
    // only read by the kernel in the other process.
    let n = unsafe {
        libc::process_vm_readv(
            tid,
            local.as_ptr(),
            local.len() as libc::c_ulong,
            remote.as_ptr(),
            remote.len() as libc::c_ulong,
            0,
        )
    };
    usize::try_from(n).unwrap_or(0)
}

fn read(tid: i32, addr: u64, len: usize) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut b = vec![0u8; len];
    (read_mem(tid, addr, &mut b) == len).then_some(b)
}

impl Interp {
    /// The cframe of `tid`'s thread state: the cached state when it still names `tid`, else a
    /// walk.
    fn tstate(&mut self, tid: i32) -> Option<u64> {
        let o = self.offsets;
        // One read gives both the check that it is still tid's and its cframe.
        if let Some(&ts) = self.tstates.get(&tid) {
            if let Some(tb) = read(tid, ts, o.tstate_size)
                && u64_at(&tb, o.tstate_native_thread_id) == tid as u64
            {
                return Some(u64_at(&tb, o.tstate_cframe));
            }
            self.tstates.remove(&tid);
        }
        let head = read(tid, self.runtime + o.runtime_interpreters_head, 8)?;
        let mut interp = u64_at(&head, 0);
        for _ in 0..MAX_INTERPRETERS {
            if interp == 0 {
                break;
            }
            let ib = read(tid, interp, (o.interp_threads_head + 8) as usize)?;
            let mut ts = u64_at(&ib, o.interp_threads_head);
            for _ in 0..MAX_THREADS {
                if ts == 0 {
                    break;
                }
                let Some(tb) = read(tid, ts, o.tstate_size) else {
                    break;
                };
                if u64_at(&tb, o.tstate_native_thread_id) == tid as u64 {
                    if self.tstates.len() >= MAX_THREADS {
                        self.tstates.clear();
                    }
                    self.tstates.insert(tid, ts);
                    return Some(u64_at(&tb, o.tstate_cframe));
                }
                ts = u64_at(&tb, o.tstate_next);
            }
            interp = u64_at(&ib, o.interp_next);
        }
        None
    }

    fn frames(&self, tid: i32, cf: u64) -> Vec<RawPyFrame> {
        let o = self.offsets;
        let mut out = Vec::new();
        let Some(first) = read(tid, cf + o.cframe_current_frame, 8).map(|b| u64_at(&b, 0)) else {
            return out;
        };
        let Some(mut fb) = read(tid, first, o.frame_size) else {
            return out;
        };
        let mut code_b = vec![0u8; o.code_size];
        let mut next_b = vec![0u8; o.frame_size];
        while out.len() < MAX_PY_FRAMES {
            let code = u64_at(&fb, o.frame_code);
            let prev_instr = u64_at(&fb, o.frame_prev_instr);
            let next = u64_at(&fb, o.frame_previous);
            // This frame's code header and the next frame in one syscall.
            let want_next = next != 0 && out.len() + 1 < MAX_PY_FRAMES;
            let n = read_two(
                tid,
                code,
                &mut code_b,
                want_next.then_some((next, &mut next_b)),
            );
            let ident =
                if n >= o.code_size && self.code_type.is_none_or(|t| u64_at(&code_b, 8) == t) {
                    ident(o, &code_b)
                } else {
                    0
                };
            let start = code + o.code_code_adaptive;
            out.push(RawPyFrame {
                code,
                ident,
                instr: if prev_instr >= start {
                    (prev_instr - start) as i64
                } else {
                    -1
                },
                entry: fb.get(o.frame_is_entry as usize).is_some_and(|&b| b != 0),
            });
            if !want_next || n < o.code_size + o.frame_size {
                break;
            }
            std::mem::swap(&mut fb, &mut next_b);
        }
        out
    }

    /// A code object's names and table, cached by address for the process while its `ident`
    /// is the same.
    fn code(&mut self, tid: i32, addr: u64, id: u64) -> Option<Rc<Code>> {
        if id == 0 {
            // Not a code object (the chain was read while it changed): no name, not garbage.
            return None;
        }
        if let Some((i, c)) = self.codes.get(&addr)
            && *i == id
        {
            return Some(c.clone());
        }
        let o = self.offsets;
        let b = read(tid, addr, o.code_size)?;
        if ident(o, &b) != id {
            return None;
        }
        let qual = self.string(tid, u64_at(&b, o.code_qualname));
        let name = qual.or_else(|| self.string(tid, u64_at(&b, o.code_name)))?;
        let file = self
            .string(tid, u64_at(&b, o.code_filename))
            .unwrap_or_else(|| "?".to_owned());
        let first_line = i64::from(i32::from_le_bytes(
            b.get(o.code_firstlineno as usize..o.code_firstlineno as usize + 4)?
                .try_into()
                .ok()?,
        ));
        let lt = u64_at(&b, o.code_linetable);
        let linetable = read(tid, lt, 0x20)
            .and_then(|h| {
                let n = u64_at(&h, 0x10) as usize;
                (n <= MAX_LINETABLE).then(|| read(tid, lt + 0x20, n))?
            })
            .unwrap_or_default();
        let c = Rc::new(Code {
            name,
            file,
            first_line,
            linetable,
        });
        if self.codes.len() >= MAX_CODES {
            self.codes.clear();
        }
        self.codes.insert(addr, (id, c.clone()));
        Some(c)
    }

    /// A compact str object's text.
    fn string(&self, tid: i32, addr: u64) -> Option<String> {
        let o = self.offsets;
        let h = read(tid, addr, o.ascii_size as usize)?;
        let len = u64_at(&h, 0x10) as usize;
        let state = u32::from_le_bytes(h.get(0x20..0x24)?.try_into().ok()?);
        let kind = ((state >> 2) & 7) as usize;
        let compact = state & (1 << 5) != 0;
        let ascii = state & (1 << 6) != 0;
        if !compact || len > MAX_STR || !matches!(kind, 1 | 2 | 4) {
            return None;
        }
        let at = if ascii { o.ascii_size } else { o.compact_size };
        let d = read(tid, addr + at, len * kind)?;
        Some(match kind {
            1 => d.iter().map(|&c| char::from(c)).collect(),
            2 => d
                .chunks_exact(2)
                .map(|c| char::from_u32(u32::from(u16::from_le_bytes([c[0], c[1]]))).unwrap_or('?'))
                .collect(),
            _ => d
                .chunks_exact(4)
                .map(|c| {
                    char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])).unwrap_or('?')
                })
                .collect(),
        })
    }
}

/// The line of byte offset `instr` in a 3.11 location table (Objects/locations.md): entries of
/// a first byte `1CCCCLLL` (code C, L+1 code units) and code-dependent data.
fn line_of(table: &[u8], first_line: i64, instr: i64) -> Option<i64> {
    if instr < 0 {
        return Some(first_line);
    }
    let target = instr / 2;
    let mut i = 0usize;
    let mut line = first_line;
    let mut at = 0i64;
    let next = |i: &mut usize| -> Option<u8> {
        let b = *table.get(*i)?;
        *i += 1;
        Some(b)
    };
    let varint = |i: &mut usize| -> Option<u64> {
        let mut b = next(i)?;
        let mut v = u64::from(b & 63);
        let mut shift = 6;
        while b & 64 != 0 && shift < 64 {
            b = next(i)?;
            v |= u64::from(b & 63) << shift;
            shift += 6;
        }
        Some(v)
    };
    let svarint = |i: &mut usize| -> Option<i64> {
        let u = varint(i)?;
        Some(if u & 1 != 0 {
            -((u >> 1) as i64)
        } else {
            (u >> 1) as i64
        })
    };
    while i < table.len() {
        let b = next(&mut i)?;
        if b & 0x80 == 0 {
            return None;
        }
        let code = (b >> 3) & 15;
        let len = i64::from(b & 7) + 1;
        let has_line = match code {
            15 => false,
            14 => {
                line += svarint(&mut i)?;
                varint(&mut i)?;
                varint(&mut i)?;
                varint(&mut i)?;
                true
            }
            13 => {
                line += svarint(&mut i)?;
                true
            }
            10..=12 => {
                line += i64::from(code) - 10;
                next(&mut i)?;
                next(&mut i)?;
                true
            }
            _ => {
                next(&mut i)?;
                true
            }
        };
        if target < at + len {
            return has_line.then_some(line);
        }
        at += len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, python: bool) -> Frame {
        Frame {
            function: name.into(),
            offset: 0,
            file: None,
            line: None,
            module: None,
            inlined: false,
            python,
        }
    }

    #[test]
    fn python_frames_go_inside_their_eval_loop_call() {
        let native = vec![
            f("open64", false),
            f("_PyEval_EvalFrameDefault", false),
            f("builtin_call", false),
            f("_PyEval_EvalFrameDefault", false),
            f("main", false),
        ];
        let py = vec![
            (f("leaky", true), false),
            (f("loop", true), true),
            (f("<module>", true), true),
        ];
        let names: Vec<String> = interleave(native, py)
            .into_iter()
            .map(|f| f.function)
            .collect();
        assert_eq!(
            names,
            [
                "open64",
                "leaky",
                "loop",
                "_PyEval_EvalFrameDefault",
                "builtin_call",
                "<module>",
                "_PyEval_EvalFrameDefault",
                "main"
            ]
        );
    }

    #[test]
    fn line_table_short_and_one_line_forms() {
        // Entry 1: one-line form code 11 (+1 line), 2 units; entry 2: no-column code 13,
        // svarint +2 (4), 1 unit; entry 3: no location, 1 unit.
        let t = [
            0x80 | (11 << 3) | 1,
            0,
            0,
            0x80 | (13 << 3),
            4,
            0x80 | (15 << 3),
        ];
        assert_eq!(line_of(&t, 10, 0), Some(11));
        assert_eq!(line_of(&t, 10, 2), Some(11));
        assert_eq!(line_of(&t, 10, 4), Some(13));
        assert_eq!(line_of(&t, 10, 6), None);
        assert_eq!(line_of(&t, 10, -1), Some(10));
    }
}
