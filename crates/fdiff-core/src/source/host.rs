//! The cheap host pass of `fdiff serve`: every process's fd count without reading a single
//! fd link, so a whole host can be watched each tick and only what grows is read in depth.
//!
//! On Linux ≥ 6.2 `stat("/proc/PID/fd").st_size` is the number of open fds (one `statx`, no
//! readdir); older kernels report 0 there, and the count falls back to counting the
//! directory's entries. Names, start times and limits come from /proc/PID/stat and
//! /proc/PID/limits; the limits and the cgroup are cached per process (by pid and start
//! time) and re-read every [`LIMITS_EVERY`] passes, since they seldom change.

use crate::snapshot::{FdLimit, ProcId};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Passes between two reads of a process's /proc/PID/limits (prlimit can change it live).
pub const LIMITS_EVERY: u64 = 10;

/// How an fd count was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMethod {
    /// `stat("/proc/PID/fd").st_size` (Linux ≥ 6.2).
    StatSize,
    /// Counting the entries of /proc/PID/fd (older kernels).
    Readdir,
}

impl CountMethod {
    /// How `/report` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            CountMethod::StatSize => "stat_size",
            CountMethod::Readdir => "readdir",
        }
    }
}

/// Which processes a host pass counts.
#[derive(Debug, Clone, Default)]
pub enum Scope {
    /// Every process on the host (`--all`).
    #[default]
    All,
    /// Every process in these cgroup v2 directories and below (`--cgroup`, `--unit`), read
    /// again each pass.
    Cgroups(Vec<PathBuf>),
    /// Exactly these pids (the selection by pid or name).
    Pids(BTreeSet<i32>),
}

/// One process as the host pass counted it.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    /// The process.
    pub id: ProcId,
    /// Its command name.
    pub comm: String,
    /// Its cgroup v2 path (`/system.slice/nginx.service`), when readable.
    pub cgroup: Option<String>,
    /// Open fds now.
    pub fds: u64,
    /// Its RLIMIT_NOFILE.
    pub limit: FdLimit,
}

impl Counted {
    /// The systemd unit its cgroup names (the last `.service`/`.scope`/`.socket` component).
    pub fn unit(&self) -> Option<&str> {
        let cg = self.cgroup.as_deref()?;
        cg.rsplit('/').find(|c| {
            c.ends_with(".service")
                || c.ends_with(".scope")
                || c.ends_with(".socket")
                || c.ends_with(".mount")
        })
    }

    /// Open fds as a share of the soft limit, 0–1; `None` without a finite limit.
    pub fn usage_ratio(&self) -> Option<f64> {
        match self.limit.soft {
            Some(s) if s > 0 => Some(self.fds as f64 / s as f64),
            _ => None,
        }
    }
}

/// What one host pass saw.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    /// Every process counted, in pid order.
    pub procs: Vec<Counted>,
    /// Processes in scope whose fds could not be counted (permission denied): counted, not
    /// errors.
    pub unreadable: u64,
}

#[derive(Debug, Clone)]
struct Cached {
    start_time: u64,
    limit: FdLimit,
    cgroup: Option<String>,
    read_at: u64,
}

/// Counts every process in a [`Scope`], pass after pass.
#[derive(Debug)]
pub struct HostCounter {
    scope: Scope,
    /// Pids counted besides the scope (those read in depth, named on the command line).
    pub extra: BTreeSet<i32>,
    method: CountMethod,
    cache: HashMap<i32, Cached>,
    passes: u64,
    me: i32,
    proc_root: PathBuf,
    cgroup_root: PathBuf,
}

impl HostCounter {
    /// A counter over `scope` on this host's /proc and /sys/fs/cgroup.
    pub fn new(scope: Scope) -> HostCounter {
        HostCounter {
            scope,
            extra: BTreeSet::new(),
            method: probe_method(),
            cache: HashMap::new(),
            passes: 0,
            me: std::process::id() as i32,
            proc_root: PathBuf::from("/proc"),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        }
    }

    /// How fds are counted on this kernel.
    pub fn method(&self) -> CountMethod {
        self.method
    }

    /// Count every process in scope now. fdiff itself is never counted.
    pub fn pass(&mut self) -> Pass {
        self.passes += 1;
        let mut pids = match &self.scope {
            Scope::All => all_pids(&self.proc_root),
            Scope::Pids(p) => p.clone(),
            Scope::Cgroups(dirs) => {
                let mut out = BTreeSet::new();
                for d in dirs {
                    cgroup_pids(&self.cgroup_root.join(strip_root(d)), &mut out, 0);
                }
                out
            }
        };
        pids.extend(self.extra.iter().copied());
        let mut pass = Pass::default();
        let mut buf = Vec::with_capacity(512);
        for pid in pids {
            if pid == self.me {
                continue;
            }
            match self.count_one(pid, &mut buf) {
                Some(Ok(c)) => pass.procs.push(c),
                Some(Err(())) => pass.unreadable += 1,
                None => {}
            }
        }
        // Processes gone since the last pass leave the cache (bounded memory for weeks).
        let live: BTreeSet<i32> = pass.procs.iter().map(|c| c.id.pid).collect();
        self.cache.retain(|pid, _| live.contains(pid));
        pass
    }

    /// One process: `None` when it is gone (or a kernel thread with no fd table), `Err` when
    /// it is there but unreadable.
    fn count_one(&mut self, pid: i32, buf: &mut Vec<u8>) -> Option<Result<Counted, ()>> {
        let dir = self.proc_root.join(pid.to_string());
        buf.clear();
        let stat = read_into(&dir.join("stat"), buf).ok()?;
        let stat = super::procinfo::parse_stat(stat)?;
        let fds = match count_fds(&dir.join("fd"), self.method) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Some(Err(())),
            Err(_) => return None,
        };
        // Kernel threads (children of kthreadd, pid 2) have no fd table worth counting.
        if stat.ppid == 2 || pid == 2 {
            return None;
        }
        let fresh =
            |c: &Cached| c.start_time == stat.start_time && self.passes - c.read_at < LIMITS_EVERY;
        let cached = match self.cache.get(&pid) {
            Some(c) if fresh(c) => c.clone(),
            _ => {
                let limit = std::fs::read(dir.join("limits"))
                    .map(|l| super::procinfo::parse_fd_limit(&l))
                    .unwrap_or_default();
                let cgroup = std::fs::read(dir.join("cgroup"))
                    .ok()
                    .and_then(|c| parse_cgroup(&c));
                let c = Cached {
                    start_time: stat.start_time,
                    limit,
                    cgroup,
                    read_at: self.passes,
                };
                self.cache.insert(pid, c.clone());
                c
            }
        };
        Some(Ok(Counted {
            id: ProcId {
                pid,
                start_time: stat.start_time,
            },
            comm: stat.comm,
            cgroup: cached.cgroup,
            fds,
            limit: cached.limit,
        }))
    }
}

fn read_into<'a>(path: &Path, buf: &'a mut Vec<u8>) -> std::io::Result<&'a [u8]> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    f.read_to_end(buf)?;
    Ok(buf)
}

/// The fd count of one /proc/PID/fd directory.
pub fn count_fds(fd_dir: &Path, method: CountMethod) -> std::io::Result<u64> {
    match method {
        CountMethod::StatSize => {
            let st = rustix::fs::stat(fd_dir)?;
            Ok(st.st_size as u64)
        }
        CountMethod::Readdir => {
            let mut n = 0;
            for e in std::fs::read_dir(fd_dir)? {
                if e.is_ok() {
                    n += 1;
                }
            }
            Ok(n)
        }
    }
}

/// Whether st_size is the fd count on this kernel: this process's own table counted both
/// ways (the readdir's own fd is one more, and is closed by the time st_size is asked again).
pub fn probe_method() -> CountMethod {
    let dir = Path::new("/proc/self/fd");
    let Ok(size) = rustix::fs::stat(dir).map(|s| s.st_size as u64) else {
        return CountMethod::Readdir;
    };
    let Ok(listed) = count_fds(dir, CountMethod::Readdir) else {
        return CountMethod::Readdir;
    };
    // The listing sees its own directory fd; st_size taken before it does not.
    if size > 0 && (listed == size || listed == size + 1) {
        CountMethod::StatSize
    } else {
        CountMethod::Readdir
    }
}

fn all_pids(proc_root: &Path) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(proc_root) {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
                out.insert(pid);
            }
        }
    }
    out
}

/// `/system.slice/x` joined under the cgroup root, never above it.
fn strip_root(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect()
}

/// Every pid in a cgroup v2 directory and its descendants (depth-bounded: a cgroup tree is
/// shallow, and a loop of bind mounts must not recurse forever).
fn cgroup_pids(dir: &Path, out: &mut BTreeSet<i32>, depth: u32) {
    if depth > 32 {
        return;
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                cgroup_pids(&e.path(), out, depth + 1);
            }
        }
    }
}

/// The cgroup v2 path of /proc/PID/cgroup (the `0::` line).
pub fn parse_cgroup(text: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_owned())
}

/// The cgroup directory (relative to /sys/fs/cgroup) of a systemd unit: the first
/// directory named `NAME` (or `NAME.service` when it has no suffix) found under the root,
/// breadth first. `None` when the unit has no cgroup (not running, or no cgroup v2).
pub fn unit_cgroup(name: &str) -> Option<PathBuf> {
    unit_cgroup_under(Path::new("/sys/fs/cgroup"), name)
}

fn unit_cgroup_under(root: &Path, name: &str) -> Option<PathBuf> {
    let wanted: Vec<String> = if name.contains('.') {
        vec![name.to_owned()]
    } else {
        vec![format!("{name}.service"), name.to_owned()]
    };
    let mut queue = std::collections::VecDeque::from([(root.to_path_buf(), 0u32)]);
    while let Some((dir, depth)) = queue.pop_front() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if e.file_name()
                .to_str()
                .is_some_and(|n| wanted.iter().any(|w| w == n))
            {
                return p.strip_prefix(root).ok().map(Path::to_path_buf);
            }
            if depth < 8 {
                queue.push_back((p, depth + 1));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn st_size_counts_fds_exactly_where_it_is_used() {
        let dir = Path::new("/proc/self/fd");
        let m = probe_method();
        let files: Vec<std::fs::File> = (0..20)
            .map(|_| std::fs::File::open("/proc/self/stat").expect("open"))
            .collect();
        let counted = count_fds(dir, m).expect("count");
        let listed = count_fds(dir, CountMethod::Readdir).expect("list");
        // readdir holds one fd of its own while it lists.
        assert!(
            counted == listed || counted + 1 == listed,
            "{m:?}: {counted} vs {listed}"
        );
        assert!(counted >= 20);
        drop(files);
    }

    #[test]
    fn a_pass_counts_this_test_process_and_its_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let mut all = HostCounter::new(Scope::All);
        let pass = all.pass();
        let found = pass.procs.iter().find(|c| c.id.pid == pid).cloned();
        let mut one = HostCounter::new(Scope::Pids([pid].into()));
        let only = one.pass();
        let _ = child.kill();
        let _ = child.wait();
        let found = found.expect("the child is counted");
        assert_eq!(found.comm, "sleep");
        assert!(found.fds >= 3, "{found:?}");
        assert!(found.limit.soft.is_some());
        assert_eq!(only.procs.len(), 1);
        assert!(
            !pass
                .procs
                .iter()
                .any(|c| c.id.pid == std::process::id() as i32),
            "never itself"
        );
    }

    #[test]
    fn cgroup_lines_and_units() {
        assert_eq!(
            parse_cgroup(b"0::/system.slice/nginx.service\n").as_deref(),
            Some("/system.slice/nginx.service")
        );
        assert_eq!(parse_cgroup(b"1:name=x:/a\n"), None);
        let c = Counted {
            id: ProcId {
                pid: 1,
                start_time: 1,
            },
            comm: "x".into(),
            cgroup: Some("/system.slice/nginx.service".into()),
            fds: 50,
            limit: FdLimit {
                soft: Some(100),
                hard: Some(200),
            },
        };
        assert_eq!(c.unit(), Some("nginx.service"));
        assert_eq!(c.usage_ratio(), Some(0.5));
        assert_eq!(strip_root(Path::new("/../a/./b")), PathBuf::from("a/b"));
    }

    #[test]
    fn unit_cgroups_are_found_by_name() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("system.slice/web.service/sub")).expect("mk");
        assert_eq!(
            unit_cgroup_under(root.path(), "web"),
            Some(PathBuf::from("system.slice/web.service"))
        );
        assert_eq!(unit_cgroup_under(root.path(), "nope.service"), None);
        let mut pids = BTreeSet::new();
        std::fs::write(
            root.path().join("system.slice/web.service/cgroup.procs"),
            "7\n9\n",
        )
        .expect("w");
        std::fs::write(
            root.path()
                .join("system.slice/web.service/sub/cgroup.procs"),
            "11\n",
        )
        .expect("w");
        cgroup_pids(&root.path().join("system.slice"), &mut pids, 0);
        assert_eq!(pids, [7, 9, 11].into());
    }
}
