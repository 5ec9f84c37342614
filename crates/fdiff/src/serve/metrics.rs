//! The exposition of `fdiff serve`: one tick's state as Prometheus metrics, through
//! prometheus-client, in the text format 0.0.4 and in OpenMetrics 1.0.
//!
//! A fresh registry is built each tick from the tick's state, so a label set whose process
//! exited (or whose group left the top K) is simply not there the next tick: nothing to
//! expire. Only the scan-duration histogram and the truncation counter live across ticks.

use prometheus_client::encoding::prometheus_text::encode as encode_text;
use prometheus_client::encoding::text::encode as encode_openmetrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

/// A label set: pairs in a fixed order.
pub type Labels = Vec<(String, String)>;

type G = Family<Labels, Gauge<f64, AtomicU64>>;
type C = Family<Labels, Counter<u64>>;

/// How values of processes folded into one label set (`--no-pid-label`) combine.
#[derive(Debug, Clone, Copy)]
pub enum Fold {
    Sum,
    Max,
    Min,
}

/// One gauge family being filled for a tick.
pub struct Gauges {
    name: &'static str,
    help: &'static str,
    fold: Fold,
    values: BTreeMap<Labels, f64>,
}

impl Gauges {
    pub fn new(name: &'static str, help: &'static str, fold: Fold) -> Gauges {
        Gauges {
            name,
            help,
            fold,
            values: BTreeMap::new(),
        }
    }

    pub fn set(&mut self, labels: Labels, v: f64) {
        if !v.is_finite() {
            return;
        }
        let fold = self.fold;
        self.values
            .entry(labels)
            .and_modify(|old| {
                *old = match fold {
                    Fold::Sum => *old + v,
                    Fold::Max => old.max(v),
                    Fold::Min => old.min(v),
                }
            })
            .or_insert(v);
    }

    fn register(self, reg: &mut Registry) {
        let fam = G::default();
        for (l, v) in self.values {
            fam.get_or_create(&l).set(v);
        }
        reg.register(self.name, self.help, fam);
    }
}

/// One counter family (the value given is the total so far).
pub struct Counters {
    name: &'static str,
    help: &'static str,
    values: BTreeMap<Labels, u64>,
}

impl Counters {
    pub fn new(name: &'static str, help: &'static str) -> Counters {
        Counters {
            name,
            help,
            values: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, labels: Labels, v: u64) {
        *self.values.entry(labels).or_insert(0) += v;
    }

    fn register(self, reg: &mut Registry) {
        let fam = C::default();
        for (l, v) in self.values {
            fam.get_or_create(&l).inc_by(v);
        }
        // prometheus-client adds the `_total` suffix itself.
        reg.register(self.name.trim_end_matches("_total"), self.help, fam);
    }
}

/// What lives across ticks.
pub struct Persistent {
    pub scan: Histogram,
    pub truncated: Counter<u64>,
}

impl Default for Persistent {
    fn default() -> Self {
        Persistent {
            scan: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.001, 2.0, 16,
            )),
            truncated: Counter::default(),
        }
    }
}

/// Every family of one tick, filled by the serve loop.
pub struct Exposition {
    pub gauges: Vec<Gauges>,
    pub counters: Vec<Counters>,
}

/// The gauge families, by index into [`Exposition::gauges`].
pub mod g {
    pub const OPEN: usize = 0;
    pub const SOFT: usize = 1;
    pub const HARD: usize = 2;
    pub const RATIO: usize = 3;
    pub const GROWTH: usize = 4;
    pub const ETA: usize = 5;
    pub const DEEP: usize = 6;
    pub const BY_KIND: usize = 7;
    pub const SOCKETS: usize = 8;
    pub const DELETED: usize = 9;
    pub const GROUP_OPEN: usize = 10;
    pub const GROUP_GROWTH: usize = 11;
    pub const GROUP_LEAKING: usize = 12;
    pub const WATCHED: usize = 13;
    pub const UNREADABLE: usize = 14;
}

/// The counter families, by index into [`Exposition::counters`].
pub mod c {
    pub const OPENED: usize = 0;
    pub const CLOSED: usize = 1;
}

impl Exposition {
    pub fn new() -> Exposition {
        use Fold::*;
        Exposition {
            gauges: vec![
                Gauges::new(
                    "fdiff_process_open_fds",
                    "Open file descriptors of the process",
                    Sum,
                ),
                Gauges::new(
                    "fdiff_process_fd_limit_soft",
                    "Soft RLIMIT_NOFILE of the process",
                    Min,
                ),
                Gauges::new(
                    "fdiff_process_fd_limit_hard",
                    "Hard RLIMIT_NOFILE of the process",
                    Min,
                ),
                Gauges::new(
                    "fdiff_process_fd_usage_ratio",
                    "Open fds over the soft limit, 0 to 1",
                    Max,
                ),
                Gauges::new(
                    "fdiff_process_fd_growth_per_second",
                    "Least-squares slope of the fd count over the recent ticks, fds per second",
                    Sum,
                ),
                Gauges::new(
                    "fdiff_process_seconds_to_fd_exhaustion",
                    "Seconds until the soft fd limit at the current growth; absent when not growing",
                    Min,
                ),
                Gauges::new(
                    "fdiff_process_deep",
                    "1 when every fd of the process is read and grouped each tick, 0 when only counted",
                    Max,
                ),
                Gauges::new(
                    "fdiff_process_open_fds_by_kind",
                    "Open fds by kind (deep processes).",
                    Sum,
                ),
                Gauges::new(
                    "fdiff_process_sockets",
                    "Open sockets by protocol and state (deep processes).",
                    Sum,
                ),
                Gauges::new(
                    "fdiff_process_deleted_file_bytes",
                    "Bytes of deleted files still held open (deep processes).",
                    Sum,
                ),
                Gauges::new(
                    "fdiff_group_open_fds",
                    "Open fds of a group (top groups of deep processes by growth).",
                    Sum,
                ),
                Gauges::new(
                    "fdiff_group_growth_per_second",
                    "Growth of a group, fds per second",
                    Sum,
                ),
                Gauges::new(
                    "fdiff_group_leaking",
                    "1 when the group is judged leaking",
                    Max,
                ),
                Gauges::new(
                    "fdiff_processes_watched",
                    "Processes counted this tick",
                    Sum,
                ),
                Gauges::new(
                    "fdiff_processes_unreadable",
                    "Processes in scope whose fds could not be read (permission).",
                    Sum,
                ),
            ],
            counters: vec![
                Counters::new(
                    "fdiff_fds_opened_total",
                    "Fds seen opened since the process became deep",
                ),
                Counters::new(
                    "fdiff_fds_closed_total",
                    "Fds seen closed since the process became deep",
                ),
            ],
        }
    }

    /// Both formats of this tick, with the families that persist.
    pub fn render(self, persistent: &Persistent, version: &str) -> (String, String) {
        let mut reg = Registry::default();
        for g in self.gauges {
            g.register(&mut reg);
        }
        for c in self.counters {
            c.register(&mut reg);
        }
        reg.register(
            "fdiff_groups_truncated",
            "Groups left out of the exposition by --max-groups, summed over ticks",
            persistent.truncated.clone(),
        );
        reg.register_with_unit(
            "fdiff_scan_duration",
            "Time one tick took (host pass and deep reads).",
            prometheus_client::registry::Unit::Seconds,
            persistent.scan.clone(),
        );
        reg.register(
            "fdiff_build",
            "fdiff's version",
            Info::new(vec![("version".to_owned(), version.to_owned())]),
        );
        let mut om = String::new();
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode_openmetrics(&mut om, &reg);
        let _ = encode_text(&mut text, &reg);
        (text, om)
    }
}

impl Default for Exposition {
    fn default() -> Self {
        Exposition::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_hold_every_family_and_escape_label_values() {
        let mut e = Exposition::new();
        let l = vec![
            ("pid".to_owned(), "7".to_owned()),
            ("comm".to_owned(), "a\"b\\c\nd".to_owned()),
        ];
        e.gauges[g::OPEN].set(l.clone(), 3.0);
        e.gauges[g::OPEN].set(l.clone(), 4.0);
        e.counters[c::OPENED].add(l, 9);
        let (text, om) = e.render(&Persistent::default(), "0.1.0");
        assert!(
            text.contains(r#"fdiff_process_open_fds{pid="7",comm="a\"b\\c\nd"} 7"#),
            "{text}"
        );
        assert!(text.contains("fdiff_fds_opened_total{"), "{text}");
        assert!(
            text.contains("fdiff_build_info{version=\"0.1.0\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("fdiff_scan_duration_seconds_bucket"),
            "{text}"
        );
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(!text.contains("# EOF"));
    }
}
