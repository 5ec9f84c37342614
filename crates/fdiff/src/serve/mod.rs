//! `fdiff serve`: the watch run continuously as a Prometheus/OpenMetrics exporter.
//!
//! Each tick counts every process in scope cheaply (the core's host pass: one stat per
//! process), reads in depth only the processes named on the command line and those whose
//! count grows steadily or passes `--deep-above` of their soft limit, feeds the deep reads to
//! the tracker, and publishes the tick's metrics and report for the HTTP threads to serve.
//! The watch never waits for a client: a scrape takes the last published snapshot.

pub mod http;
pub mod metrics;

use crate::app::signals::Stop;
use crate::cli::ServeArgs;
use crate::config::{self, quoted};
use crate::error::Error;
use crate::exit_codes::Exit;
use crate::snapshot::{Detail, ProcId};
use crate::source::host::{Counted, HostCounter, Scope};
use crate::source::live::LiveSource;
use crate::source::{Event, Tick};
use crate::track::{TrackOptions, Tracker};
use metrics::{Exposition, Labels, Persistent, c, g};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Samples of each process's count kept for its growth (at 1 s ticks, half a minute).
const HISTORY: usize = 30;
/// Least samples before a count is judged growing steadily.
const STEADY_MIN: usize = 8;
/// Least net growth over the history for "growing steadily".
const STEADY_NET: u64 = 5;
/// The longest `--demote-after`.
const MAX_DEMOTE_AFTER: Duration = Duration::from_secs(365 * 86_400);

struct Config {
    scope: Option<Scope>,
    named: bool,
    selector: crate::source::select::Selector,
    listen: SocketAddr,
    exposed: bool,
    interval: Duration,
    duration: Option<Duration>,
    deep_above: f64,
    max_deep: usize,
    demote_after: Duration,
    max_groups: usize,
    no_pid_label: bool,
    textfile: Option<PathBuf>,
    max_connections: usize,
    quiet: bool,
}

fn config(a: ServeArgs) -> Result<Config, Error> {
    let named = config::has_selection(&a.select);
    let mut cgroups = Vec::new();
    for cg in &a.cgroup {
        let p = PathBuf::from(cg);
        let dir = PathBuf::from("/sys/fs/cgroup").join(p.strip_prefix("/").unwrap_or(&p));
        let dir = if p.starts_with("/sys/fs/cgroup") {
            p.clone()
        } else {
            dir
        };
        if !dir.join("cgroup.procs").exists() {
            return Err(Error::failed(format!(
                "no cgroup v2 directory {} (looked for {}): give a path as /proc/PID/cgroup shows it, e.g. /system.slice/nginx.service",
                quoted(cg),
                quoted(&dir.to_string_lossy())
            )));
        }
        cgroups.push(
            dir.strip_prefix("/sys/fs/cgroup")
                .unwrap_or(&dir)
                .to_path_buf(),
        );
    }
    for u in &a.unit {
        match crate::source::host::unit_cgroup(u) {
            Some(p) => cgroups.push(p),
            None => {
                return Err(Error::failed(format!(
                    "no cgroup for unit {}: is it running? ('systemctl status {}')",
                    quoted(u),
                    crate::util::escape_control(u)
                )));
            }
        }
    }
    let scope = if a.all {
        Some(Scope::All)
    } else if !cgroups.is_empty() {
        Some(Scope::Cgroups(cgroups))
    } else {
        None
    };
    if scope.is_none() && !named {
        return Err(Error::usage(
            "nothing to serve: give --all, --cgroup PATH, --unit NAME, --pid PID or --name REGEX",
        ));
    }
    let (listen, exposed) = listen(&a.listen, a.allow_remote)?;
    let deep_above = share(&a.deep_above)?;
    if let Some(d) = &a.textfile
        && !d.is_dir()
    {
        return Err(Error::failed(format!(
            "--textfile {} is not a directory: give the directory node_exporter's textfile collector reads",
            quoted(&d.to_string_lossy())
        )));
    }
    if a.max_connections == 0 {
        return Err(Error::usage("--max-connections '0': give at least 1"));
    }
    Ok(Config {
        scope,
        named,
        selector: config::selector(&a.select)?,
        listen,
        exposed,
        interval: config::interval(&a.interval)?,
        duration: a
            .duration
            .as_deref()
            .map(config::watch_duration)
            .transpose()?,
        deep_above,
        max_deep: a.max_deep,
        demote_after: config::duration(&a.demote_after, "--demote-after", MAX_DEMOTE_AFTER)?,
        max_groups: a.max_groups,
        no_pid_label: a.no_pid_label,
        textfile: a.textfile,
        max_connections: a.max_connections,
        quiet: a.quiet,
    })
}

/// The address to serve on, and whether it reaches beyond this host. Only loopback unless
/// `allow_remote`: the metrics name every process of the host.
fn listen(s: &str, allow_remote: bool) -> Result<(SocketAddr, bool), Error> {
    let bad = || {
        Error::usage(format!(
            "invalid --listen {}: expected ADDR:PORT, e.g. 127.0.0.1:9464",
            quoted(s)
        ))
    };
    let addrs: Vec<SocketAddr> = s.to_socket_addrs().map_err(|_| bad())?.collect();
    let first = *addrs.first().ok_or_else(bad)?;
    let exposed = addrs.iter().any(|a| !a.ip().is_loopback());
    if exposed && !allow_remote {
        return Err(Error::usage(format!(
            "--listen {} is not a loopback address: the metrics name every watched process; \
             add --allow-remote to serve beyond this host",
            quoted(s)
        )));
    }
    Ok((first, exposed))
}

/// "50%", "0.5": a share in (0, 1].
fn share(s: &str) -> Result<f64, Error> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    };
    match v {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(Error::usage(format!(
            "invalid --deep-above {}: give a share of the soft limit from 1% to 100%, e.g. 50%",
            quoted(s)
        ))),
    }
}

/// Why a process is read in depth.
#[derive(Debug, Clone)]
struct Deep {
    reason: String,
    /// Named on the command line: read in depth for the whole serve, never demoted.
    named: bool,
    /// The latest time (serve's monotonic seconds) it still grew, neared its limit or had a
    /// leaking group; `--demote-after` past it, it goes back to being counted.
    active_at: f64,
}

/// What a tick read of one deep process beyond its count.
#[derive(Debug, Default)]
struct DeepRead {
    by_kind: BTreeMap<&'static str, u64>,
    sockets: BTreeMap<(String, String), u64>,
    deleted_bytes: u64,
}

fn read_of(s: &crate::snapshot::Snapshot) -> DeepRead {
    let mut r = DeepRead::default();
    for e in &s.fds {
        *r.by_kind.entry(e.detail.kind().as_str()).or_insert(0) += 1;
        match &e.detail {
            Detail::Socket(sd) => {
                let state = sd.state.clone().unwrap_or_else(|| "none".to_owned());
                *r.sockets.entry((sd.proto.clone(), state)).or_insert(0) += 1;
            }
            Detail::File(f) if f.deleted => r.deleted_bytes += f.size.unwrap_or(0),
            _ => {}
        }
    }
    r
}

/// The serve loop's state across ticks.
struct State {
    cfg: Config,
    host: HostCounter,
    source: LiveSource,
    tracker: Tracker,
    history: HashMap<ProcId, VecDeque<(f64, u64)>>,
    deep: HashMap<ProcId, Deep>,
    persistent: Persistent,
    epoch: Instant,
    ticks: u64,
    /// Processes sent back to counting so far.
    demoted: u64,
}

/// Least-squares slope of (t, y), per second.
fn slope(h: &VecDeque<(f64, u64)>) -> f64 {
    let n = h.len() as f64;
    if h.len() < 2 {
        return 0.0;
    }
    let mt = h.iter().map(|p| p.0).sum::<f64>() / n;
    let my = h.iter().map(|p| p.1 as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for &(t, y) in h {
        num += (t - mt) * (y as f64 - my);
        den += (t - mt) * (t - mt);
    }
    if den > 0.0 { num / den } else { 0.0 }
}

/// Growing steadily: enough samples, a net rise, and most steps not down.
fn steady(h: &VecDeque<(f64, u64)>) -> bool {
    if h.len() < STEADY_MIN {
        return false;
    }
    let (Some(first), Some(last)) = (h.front(), h.back()) else {
        return false;
    };
    let ups = h
        .iter()
        .zip(h.iter().skip(1))
        .filter(|(a, b)| b.1 > a.1)
        .count();
    let downs = h
        .iter()
        .zip(h.iter().skip(1))
        .filter(|(a, b)| b.1 < a.1)
        .count();
    last.1 >= first.1 + STEADY_NET && ups * 2 >= h.len() - 1 && downs * 4 <= h.len()
}

impl State {
    fn labels(&self, c: &Counted) -> Labels {
        let mut l = Vec::with_capacity(4);
        if !self.cfg.no_pid_label {
            l.push(("pid".to_owned(), c.id.pid.to_string()));
        }
        l.push(("comm".to_owned(), c.comm.clone()));
        if let Some(cg) = &c.cgroup {
            l.push(("cgroup".to_owned(), cg.clone()));
        }
        if let Some(u) = c.unit() {
            l.push(("unit".to_owned(), u.to_owned()));
        }
        l
    }

    fn tick(&mut self) -> Result<http::Published, Error> {
        let started = Instant::now();
        self.ticks += 1;
        let mono = self.epoch.elapsed().as_secs_f64();
        let deep_pids: BTreeSet<i32> = self.deep.keys().map(|d| d.pid).collect();
        self.host.extra = deep_pids;
        let pass = self.host.pass();
        for c in &pass.procs {
            let h = self.history.entry(c.id).or_default();
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back((mono, c.fds));
        }
        let live: BTreeSet<ProcId> = pass.procs.iter().map(|c| c.id).collect();
        self.history.retain(|id, _| live.contains(id));
        // Promote what grows or nears its limit, within --max-deep.
        if self.cfg.scope.is_some() {
            for c in &pass.procs {
                if self.deep.len() >= self.cfg.max_deep || self.deep.contains_key(&c.id) {
                    continue;
                }
                let reason = if c.usage_ratio().is_some_and(|r| r >= self.cfg.deep_above) {
                    Some(format!(
                        "uses {:.0}% of its soft fd limit (--deep-above {:.0}%)",
                        c.usage_ratio().unwrap_or(0.0) * 100.0,
                        self.cfg.deep_above * 100.0
                    ))
                } else {
                    self.history.get(&c.id).filter(|h| steady(h)).map(|h| {
                        format!(
                            "its fd count grows steadily ({:+.2} fds/s over {} ticks)",
                            slope(h),
                            h.len()
                        )
                    })
                };
                if let Some(reason) = reason
                    && self.source.add_pid(c.id.pid)
                {
                    self.deep.insert(
                        c.id,
                        Deep {
                            reason,
                            named: false,
                            active_at: mono,
                        },
                    );
                }
            }
        }
        let tick = self.deep_tick()?;
        let mut reads: HashMap<ProcId, DeepRead> = HashMap::new();
        for ev in &tick.events {
            match ev {
                Event::First(s) | Event::Update { snapshot: s, .. } => {
                    self.deep.entry(s.proc_id()).or_insert_with(|| Deep {
                        reason: "named on the command line (--pid/--name)".to_owned(),
                        named: true,
                        active_at: mono,
                    });
                    reads.insert(s.proc_id(), read_of(s));
                }
                Event::Exited { id, .. } => {
                    self.deep.remove(id);
                }
            }
        }
        self.tracker.feed(&tick);
        self.demote(mono, &pass);
        let mut e = Exposition::new();
        let by_pid: HashMap<i32, &Counted> = pass.procs.iter().map(|c| (c.id.pid, c)).collect();
        for c in &pass.procs {
            let l = self.labels(c);
            let gs = &mut e.gauges;
            gs[g::OPEN].set(l.clone(), c.fds as f64);
            if let Some(s) = c.limit.soft {
                gs[g::SOFT].set(l.clone(), s as f64);
            }
            if let Some(h) = c.limit.hard {
                gs[g::HARD].set(l.clone(), h as f64);
            }
            if let Some(r) = c.usage_ratio() {
                gs[g::RATIO].set(l.clone(), r);
            }
            let h = self.history.get(&c.id);
            let rate = h.map_or(0.0, slope);
            gs[g::GROWTH].set(l.clone(), rate);
            if rate > 0.0
                && h.is_some_and(steady)
                && let Some(s) = c.limit.soft
            {
                gs[g::ETA].set(l.clone(), (s.saturating_sub(c.fds)) as f64 / rate);
            }
            let is_deep = self.deep.contains_key(&c.id);
            gs[g::DEEP].set(l.clone(), if is_deep { 1.0 } else { 0.0 });
            if let Some(r) = reads.get(&c.id) {
                for (k, n) in &r.by_kind {
                    let mut lk = l.clone();
                    lk.push(("kind".to_owned(), (*k).to_owned()));
                    gs[g::BY_KIND].set(lk, *n as f64);
                }
                for ((proto, state), n) in &r.sockets {
                    let mut ls = l.clone();
                    ls.push(("proto".to_owned(), proto.clone()));
                    ls.push(("state".to_owned(), state.clone()));
                    gs[g::SOCKETS].set(ls, *n as f64);
                }
                gs[g::DELETED].set(l.clone(), r.deleted_bytes as f64);
            }
        }
        // Groups of deep processes: leaking first, then by growth; top --max-groups.
        let view = self.tracker.view();
        let mut groups = Vec::new();
        for p in view.processes().filter(|p| !p.exited()) {
            let Some(c) = by_pid.get(&p.pid()) else {
                continue;
            };
            let l = self.labels(c);
            let (mut opened, mut closed) = (0, 0);
            for gv in p.groups() {
                opened += gv.opened();
                closed += gv.closed();
                let v = gv.verdict();
                if gv.count() > 0 || v.leaking {
                    groups.push((
                        v.leaking,
                        v.rate_per_sec,
                        gv.count(),
                        gv.kind(),
                        gv.key().to_owned(),
                        l.clone(),
                    ));
                }
            }
            e.counters[c::OPENED].add(l.clone(), opened);
            e.counters[c::CLOSED].add(l, closed);
        }
        groups.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
        let cut = groups.len().saturating_sub(self.cfg.max_groups);
        self.persistent.truncated.inc_by(cut as u64);
        for (leaking, rate, count, kind, key, mut l) in groups.into_iter().take(self.cfg.max_groups)
        {
            l.push(("kind".to_owned(), kind.as_str().to_owned()));
            l.push(("group".to_owned(), key));
            e.gauges[g::GROUP_OPEN].set(l.clone(), count as f64);
            e.gauges[g::GROUP_GROWTH].set(l.clone(), rate);
            e.gauges[g::GROUP_LEAKING].set(l, if leaking { 1.0 } else { 0.0 });
        }
        e.gauges[g::WATCHED].set(Vec::new(), pass.procs.len() as f64);
        e.gauges[g::UNREADABLE].set(Vec::new(), pass.unreadable as f64);
        self.persistent
            .scan
            .observe(started.elapsed().as_secs_f64());
        let (text, openmetrics) = e.render(&self.persistent, env!("CARGO_PKG_VERSION"));
        let report = self.report_json(&pass);
        Ok(http::Published {
            text,
            openmetrics,
            report,
            ticks: self.ticks,
        })
    }

    /// Send back to counting the deep processes (promoted, not named) that have been quiet
    /// for `--demote-after`: not growing steadily, under `--deep-above`, no leaking group.
    /// Without this a serve that runs for weeks would fill `--max-deep` with processes that
    /// grew once, and read nothing new in depth after that.
    fn demote(&mut self, mono: f64, pass: &crate::source::host::Pass) {
        let leaking: BTreeSet<i32> = self.tracker.view().leaking().map(|g| g.pid()).collect();
        let by_id: HashMap<ProcId, &Counted> = pass.procs.iter().map(|c| (c.id, c)).collect();
        let mut quiet = Vec::new();
        for (id, d) in &mut self.deep {
            if d.named {
                continue;
            }
            let near = by_id
                .get(id)
                .and_then(|c| c.usage_ratio())
                .is_some_and(|r| r >= self.cfg.deep_above);
            let grows = self.history.get(id).is_some_and(steady);
            if near || grows || leaking.contains(&id.pid) {
                d.active_at = mono;
            } else if mono - d.active_at >= self.cfg.demote_after.as_secs_f64() {
                quiet.push(*id);
            }
        }
        for id in quiet {
            self.deep.remove(&id);
            self.source.remove_pid(id.pid);
            self.tracker.forget(id);
            self.demoted += 1;
        }
    }

    /// One tick of the deep reads (an empty tick when nothing is deep).
    fn deep_tick(&mut self) -> Result<Tick, Error> {
        let tick = self.source.next_tick()?;
        Ok(tick)
    }

    /// The live report with what serve adds: which processes are deep and why, how many
    /// were counted and how many could not be read.
    fn report_json(&self, pass: &crate::source::host::Pass) -> String {
        let mut report = self.tracker.report();
        report.unwatched = self.source.unwatched();
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        let mut deep: Vec<_> = self
            .deep
            .iter()
            .map(|(id, d)| {
                let comm = pass
                    .procs
                    .iter()
                    .find(|c| c.id == *id)
                    .map(|c| c.comm.clone())
                    .unwrap_or_default();
                serde_json::json!({"pid": id.pid, "comm": comm, "reason": d.reason})
            })
            .collect();
        deep.sort_by_key(|d| d["pid"].as_i64());
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "serve".to_owned(),
                serde_json::json!({
                    "count_method": self.host.method().as_str(),
                    "processes_counted": pass.procs.len(),
                    "processes_unreadable": pass.unreadable,
                    "deep": deep,
                    "demoted": self.demoted,
                }),
            );
        }
        fdiff_core::json::to_string(&v, fdiff_core::json::Style::Compact).unwrap_or_default()
    }
}

/// Write `DIR/fdiff.prom` through a temporary file and a rename, so the collector never reads
/// half a file.
fn write_textfile(dir: &std::path::Path, text: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!(".fdiff.prom.{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join("fdiff.prom"))
}

/// Run `fdiff serve` until a signal or `--duration`.
pub fn run(a: ServeArgs) -> Result<Exit, Error> {
    let cfg = config(a)?;
    let listener = TcpListener::bind(cfg.listen).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "address already in use: stop what serves there or give another port with --listen"
                    .to_owned()
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied: use a port above 1023 or run with CAP_NET_BIND_SERVICE"
                    .to_owned()
            }
            _ => crate::util::escape_control(&e.to_string()).into_owned(),
        };
        Error::failed(format!(
            "cannot listen on {}: {why}",
            quoted(&cfg.listen.to_string())
        ))
    })?;
    let addr = listener.local_addr().unwrap_or(cfg.listen);
    if !cfg.quiet || cfg.exposed {
        eprintln!(
            "fdiff: serving http://{addr}/metrics, /report, /healthz{}",
            if cfg.exposed {
                " — exposed beyond this host (--allow-remote): anyone who reaches it sees every watched process"
            } else {
                ""
            }
        );
    }
    let stop = Stop::install();
    crate::source::unwatched::raise_fd_limit();
    let mut source = LiveSource::new(cfg.selector.clone());
    if cfg.named {
        match source.start() {
            Ok(()) => {}
            // Over a wider scope a name that matches nothing yet is no error.
            Err(_) if cfg.scope.is_some() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let board = http::Board::default();
    let limits = http::Limits {
        max_connections: cfg.max_connections,
        timeout: Duration::from_secs(5),
    };
    let b2 = board.clone();
    std::thread::Builder::new()
        .name("fdiff-accept".into())
        .spawn(move || http::serve(listener, b2, limits))
        .map_err(|e| Error::io("the HTTP thread", &e))?;
    let scope = cfg.scope.clone().unwrap_or(Scope::Pids(BTreeSet::new()));
    let tracker = Tracker::new(TrackOptions::default(), cfg.interval.as_secs_f64());
    let mut state = State {
        host: HostCounter::new(scope),
        source,
        tracker,
        history: HashMap::new(),
        deep: HashMap::new(),
        persistent: Persistent::default(),
        epoch: Instant::now(),
        ticks: 0,
        demoted: 0,
        cfg,
    };
    let start = Instant::now();
    let end = state.cfg.duration.and_then(|d| start.checked_add(d));
    let mut next = start;
    let mut textfile_failed = false;
    loop {
        let published = state.tick()?;
        if let Some(dir) = &state.cfg.textfile {
            match write_textfile(dir, &published.text) {
                Ok(()) => textfile_failed = false,
                Err(e) if !textfile_failed => {
                    textfile_failed = true;
                    crate::app::output::warn(&format!(
                        "cannot write {}: {e}; retrying each tick",
                        quoted(&dir.join("fdiff.prom").to_string_lossy())
                    ));
                }
                Err(_) => {}
            }
        }
        board.publish(published);
        next += state.cfg.interval;
        let now = Instant::now();
        if next < now {
            // A tick longer than the interval: the next one starts now, not in a burst.
            next = now;
        }
        if end.is_some_and(|e| next >= e) {
            break;
        }
        stop.sleep_until(next);
        if stop.signal().is_some() {
            break;
        }
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_is_loopback_unless_allowed() {
        assert!(listen("127.0.0.1:9464", false).is_ok());
        assert!(listen("[::1]:9464", false).is_ok());
        let e = listen("0.0.0.0:9464", false).unwrap_err();
        assert_eq!(e.code, Exit::Usage);
        assert!(e.message.contains("'0.0.0.0:9464'") && e.message.contains("--allow-remote"));
        assert!(listen("0.0.0.0:9464", true).is_ok_and(|(_, exposed)| exposed));
        assert_eq!(listen("nonsense", false).unwrap_err().code, Exit::Usage);
    }

    #[test]
    fn shares_and_steady_growth() {
        assert_eq!(share("50%").ok(), Some(0.5));
        assert_eq!(share("0.8").ok(), Some(0.8));
        for bad in ["0", "150%", "x", "-5%"] {
            assert!(share(bad).is_err(), "{bad}");
        }
        let up: VecDeque<(f64, u64)> = (0..10).map(|i| (i as f64, 10 + i)).collect();
        assert!(steady(&up));
        assert!((slope(&up) - 1.0).abs() < 1e-9);
        let flat: VecDeque<(f64, u64)> = (0..10).map(|i| (i as f64, 10 + i % 2)).collect();
        assert!(!steady(&flat));
    }
}
