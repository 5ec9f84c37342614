//! Process selection: by pid, by name or command line, and whole trees of descendants,
//! re-evaluated every tick so respawned workers join the watch.

use regex::Regex;
use std::collections::BTreeSet;

/// Which processes to watch.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// Processes named by pid (`--pid`).
    pub pids: Vec<i32>,
    /// Matched against comm, or the whole command line with `full`.
    pub name: Option<Regex>,
    /// `name` is matched against the whole command line (`--full`).
    pub full: bool,
    /// Descendants of the selected processes join too (`--children`).
    pub children: bool,
}

impl Selector {
    /// Whether new processes can join after the first tick.
    pub(crate) fn is_dynamic(&self) -> bool {
        self.name.is_some() || self.children
    }

    /// Pids to watch now: the named ones on the first tick, name matches, and descendants of
    /// `watched` (the pids already being watched). Never fdiff itself.
    pub(crate) fn candidates(&self, first: bool, watched: &[i32]) -> BTreeSet<i32> {
        let me = std::process::id() as i32;
        let mut out = BTreeSet::new();
        if first {
            out.extend(self.pids.iter().copied());
        }
        if let Some(re) = &self.name {
            if let Ok(procs) = procfs::process::all_processes() {
                for p in procs.flatten() {
                    if p.pid != me && self.matches(re, &p) {
                        out.insert(p.pid);
                    }
                }
            }
        }
        if self.children {
            let mut roots: Vec<i32> = out.iter().copied().chain(watched.iter().copied()).collect();
            let mut seen: BTreeSet<i32> = roots.iter().copied().collect();
            while let Some(p) = roots.pop() {
                for c in children_of(p) {
                    if seen.insert(c) {
                        out.insert(c);
                        roots.push(c);
                    }
                }
            }
        }
        out.remove(&me);
        out
    }

    /// Name scans run once per tick over every process on the machine, not per fd, so
    /// procfs's convenience is worth its cost here.
    fn matches(&self, re: &Regex, p: &procfs::process::Process) -> bool {
        if self.full {
            p.cmdline().is_ok_and(|args| re.is_match(&args.join(" ")))
        } else {
            p.stat().is_ok_and(|st| re.is_match(&st.comm))
        }
    }
}

/// Children of every thread of `pid` (/proc/PID/task/TID/children).
pub(crate) fn children_of(pid: i32) -> Vec<i32> {
    let Ok(proc) = procfs::process::Process::new(pid) else {
        return Vec::new();
    };
    let Ok(tasks) = proc.tasks() else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| t.children().ok())
        .flatten()
        .filter_map(|c| i32::try_from(c).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_of_self_includes_a_spawned_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let me = std::process::id() as i32;
        let kids = children_of(me);
        let ok = kids.contains(&(child.id() as i32));
        let _ = child.kill();
        let _ = child.wait();
        assert!(ok, "{kids:?}");
        let sel = Selector {
            children: true,
            ..Selector::default()
        };
        assert!(!sel.candidates(true, &[me]).contains(&me), "never itself");
    }
}
