//! Compare two sets of snapshots (`fdiff diff`): fds opened, closed and replaced, and the count
//! change of every group, per process paired by pid and start time.

use super::TrackOptions;
use super::group::{self, Listeners};
use super::model::{DIFF_SCHEMA, DiffReport, GroupChange, ProcRef, ProcessDiff};
use crate::diff::diff;
use crate::snapshot::{Kind, Snapshot};
use std::collections::BTreeMap;

/// `fdiff diff`: pair the processes of two sets of snapshots (by pid and start time; a single
/// process on each side is paired whatever its start time) and say what changed in each.
pub fn compare(before: &[Snapshot], after: &[Snapshot], opts: &TrackOptions) -> DiffReport {
    let mut processes = Vec::new();
    let mut only_before = Vec::new();
    let mut only_after: Vec<ProcRef> = Vec::new();
    if before.len() == 1 && after.len() == 1 {
        // One process on each side: compare them even if the process restarted in between,
        // but say so.
        processes.push(pair(&before[0], &after[0], opts));
    } else {
        for a in before {
            match after.iter().find(|b| b.proc_id() == a.proc_id()) {
                Some(b) => processes.push(pair(a, b, opts)),
                None => only_before.push(proc_ref(a)),
            }
        }
        for b in after {
            if !before.iter().any(|a| a.proc_id() == b.proc_id()) {
                only_after.push(proc_ref(b));
            }
        }
    }
    DiffReport {
        schema: DIFF_SCHEMA.to_owned(),
        processes,
        only_before,
        only_after,
    }
}

fn proc_ref(s: &Snapshot) -> ProcRef {
    ProcRef {
        pid: s.pid,
        comm: s.comm.clone(),
        start_time: s.start_time,
    }
}

fn pair(a: &Snapshot, b: &Snapshot, opts: &TrackOptions) -> ProcessDiff {
    let d = diff(&a.fds, &b.fds);
    let counts = |s: &Snapshot| {
        let mut l = Listeners::default();
        s.fds.iter().for_each(|e| l.add(e));
        let mut m: BTreeMap<(Kind, String), u64> = BTreeMap::new();
        for e in s.fds.iter().filter(|e| opts.keeps(e)) {
            *m.entry((e.kind(), group::key(e, opts.group_by, &l)))
                .or_default() += 1;
        }
        m
    };
    let (ca, cb) = (counts(a), counts(b));
    let mut groups: Vec<GroupChange> = ca
        .keys()
        .chain(cb.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|k| {
            let before = ca.get(k).copied().unwrap_or(0);
            let after = cb.get(k).copied().unwrap_or(0);
            GroupChange {
                kind: k.0,
                key: k.1.clone(),
                before,
                after,
                change: after as i64 - before as i64,
            }
        })
        .filter(|g| g.change != 0)
        .collect();
    groups.sort_by(|x, y| y.change.cmp(&x.change).then(x.key.cmp(&y.key)));
    let keep = |v: Vec<std::sync::Arc<crate::snapshot::FdEntry>>| {
        v.into_iter().filter(|e| opts.keeps(e)).collect()
    };
    ProcessDiff {
        pid: a.pid,
        comm: a.comm.clone(),
        start_time: a.start_time,
        after_start_time: (b.proc_id() != a.proc_id()).then_some(b.start_time),
        before_taken_at: a.taken_at,
        after_taken_at: b.taken_at,
        fds_before: a.fds.len() as u64,
        fds_after: b.fds.len() as u64,
        opened: keep(d.opened),
        closed: keep(d.closed),
        replaced: d
            .replaced
            .into_iter()
            .filter(|r| opts.keeps(&r.old) || opts.keeps(&r.new))
            .collect(),
        groups,
    }
}
