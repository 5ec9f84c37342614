//! Process selection: by pid, by name or command line, and whole trees of descendants,
//! re-evaluated every tick so respawned workers join the watch.

use regex::Regex;
use std::collections::BTreeSet;

/// Which processes to watch.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub pids: Vec<i32>,
    /// Matched against comm, or the whole command line with `full`.
    pub name: Option<Regex>,
    pub full: bool,
    pub children: bool,
}

impl Selector {
    /// Whether new processes can join after the first tick.
    pub fn is_dynamic(&self) -> bool {
        self.name.is_some() || self.children
    }

    /// Pids to watch now: the named ones on the first tick, name matches, and descendants of
    /// `watched` (the pids already being watched). Never fdiff itself.
    pub fn candidates(&self, first: bool, watched: &[i32]) -> BTreeSet<i32> {
        let me = std::process::id() as i32;
        let mut out = BTreeSet::new();
        if first {
            out.extend(self.pids.iter().copied());
        }
        if let Some(re) = &self.name {
            for pid in all_pids() {
                if pid != me && self.matches(re, pid) {
                    out.insert(pid);
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

    fn matches(&self, re: &Regex, pid: i32) -> bool {
        if self.full {
            match std::fs::read(format!("/proc/{pid}/cmdline")) {
                Ok(raw) => {
                    let args = super::procinfo::parse_cmdline(&raw);
                    re.is_match(&args.join(" "))
                }
                Err(_) => false,
            }
        } else {
            match std::fs::read(format!("/proc/{pid}/comm")) {
                Ok(raw) => re.is_match(String::from_utf8_lossy(&raw).trim_end_matches('\n')),
                Err(_) => false,
            }
        }
    }
}

fn all_pids() -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Children of every thread of `pid` (/proc/PID/task/TID/children).
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in rd.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                text.split_ascii_whitespace()
                    .filter_map(|w| w.parse::<i32>().ok()),
            );
        }
    }
    out
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
