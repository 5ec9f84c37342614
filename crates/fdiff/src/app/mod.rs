//! The commands: parse, validate, run the pipeline, render. `main` only turns [`run`]'s result
//! into an exit code.

pub mod demo;
mod demo_child;
mod observers;
pub mod output;
pub mod run_cmd;
pub mod signals;
pub mod stacks;
pub mod watch;

use crate::cli::{Cli, Command, DiffArgs, ReportArgs, SnapshotArgs, WatchArgs};
use crate::config;
use crate::error::Error;
use crate::exit_codes::Exit;
use crate::report::{Format, diff_renderer, report_renderer, snapshot_renderer};
use crate::source::live::LiveSource;
use crate::source::recording::{RecordingSource, load_snapshots, open};
use crate::source::unwatched;
use crate::track::{Report, compare::compare};
use clap::Parser;
use std::ffi::OsString;
use std::io::Write;
use watch::WatchOptions;

/// Run fdiff with these arguments (the first is the program name); returns the exit code.
pub fn run<I, T>(args: I) -> Result<Exit, Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // A completion script asking for candidates (FDIFF_COMPLETE set): answered, nothing else.
    if crate::complete::answer_request(args.iter().cloned())? {
        return Ok(Exit::Ok);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => return clap_error(e),
    };
    match cli.command {
        None => watch_cmd(cli.watch),
        Some(Command::Snapshot(a)) => snapshot_cmd(a),
        Some(Command::Diff(a)) => diff_cmd(a),
        Some(Command::Report(a)) => report_cmd(a),
        Some(Command::Run(a)) => run_cmd::run(a),
        Some(Command::Demo(a)) => demo::run(a),
        Some(Command::Completions(a)) => {
            stdout_write(|w| crate::complete::write_script(a.shell, w))?;
            Ok(Exit::Ok)
        }
        Some(Command::Generate(a)) => {
            crate::manpage::generate(&a.dir)?;
            Ok(Exit::Ok)
        }
        Some(Command::Serve(a)) => crate::serve::run(a),
        Some(Command::DemoChild) => Ok(Exit::Command(demo::child())),
    }
}

/// Help and version go to stdout with success; a usage error becomes one line and exit 2.
fn clap_error(e: clap::Error) -> Result<Exit, Error> {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let text = e.render().to_string();
            std::io::stdout()
                .lock()
                .write_all(text.as_bytes())
                .map_err(|e| output::write_err(e, "stdout"))?;
            Ok(Exit::Ok)
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = std::io::stderr()
                .lock()
                .write_all(e.render().to_string().as_bytes());
            Ok(Exit::Usage)
        }
        _ => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_owned();
            Err(Error::usage(format!("{first} (see 'fdiff --help')")))
        }
    }
}

fn stdout_write(f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), Error> {
    let stdout = std::io::stdout();
    let mut lock = std::io::BufWriter::new(stdout.lock());
    f(&mut lock)
        .and_then(|()| lock.flush())
        .map_err(|e| output::write_err(e, "stdout"))
}

/// Block until the selection matches something (`--wait`), or fail with one line. A
/// `--duration` counts from the start, the wait included: nothing matching within it is an
/// error, not a wait forever. Returns `false` when a signal ended the wait.
fn start_source(
    source: &mut LiveSource,
    wait: bool,
    stop: &signals::Stop,
    duration: Option<std::time::Duration>,
) -> Result<bool, Error> {
    let start = std::time::Instant::now();
    let deadline = duration.and_then(|d| start.checked_add(d));
    loop {
        match source.start() {
            Ok(()) => return Ok(true),
            Err(e) if !wait => return Err(e.into()),
            Err(e) => {
                let now = std::time::Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return Err(Error::failed(format!(
                        "{} within --duration {}",
                        e.to_string().trim_end_matches(WAIT_HINT),
                        humantime::format_duration(duration.unwrap_or_default()),
                    )));
                }
                let next = now + std::time::Duration::from_millis(250);
                stop.sleep_until(deadline.map_or(next, |d| d.min(next)));
                if stop.signal().is_some() {
                    return Ok(false);
                }
            }
        }
    }
}

/// The end of the no-match line that suggests --wait, which a --wait run has used already.
const WAIT_HINT: &str = " (use --wait to wait for one)";

fn watch_cmd(a: WatchArgs) -> Result<Exit, Error> {
    if !config::has_selection(&a.select) {
        return Err(Error::usage(
            "nothing to watch: give --pid PID or --name REGEX (or try 'fdiff demo')",
        ));
    }
    let selector = config::selector(&a.select)?;
    let mut timing = config::timing(&a.watch.timing)?;
    let analysis = config::analysis(&a.watch.analysis)?;
    let charts = crate::report::html::ChartFiles::open(&a.watch.charts)?;
    // issue 12: the eBPF probe (ptrace would stop a running service).
    let mut stacks_obs = stacks::StacksObserver::probe(
        a.watch.stacks,
        analysis.track.group_by,
        "watching without stacks",
    );
    let stop = signals::Stop::install();
    unwatched::raise_fd_limit();
    let mut source = LiveSource::new(selector);
    let waiting = std::time::Instant::now();
    if !start_source(&mut source, a.select.wait, &stop, timing.duration)? {
        return Ok(Exit::Ok);
    }
    timing.duration = timing.duration.map(|d| d.saturating_sub(waiting.elapsed()));
    let opts = WatchOptions {
        keep_waiting: false,
        timing,
        analysis,
        record: a.watch.record,
        verbose: a.watch.verbose,
    };
    let to = if crate::tui::wanted(opts.timing.quiet, a.watch.timing.no_tui) {
        watch::LiveTo::Tui { redraw_all: false }
    } else {
        watch::LiveTo::beside(opts.analysis.format, opts.timing.quiet)
    };
    let mut w = watch::watch_to_with(
        &mut source,
        &opts,
        to,
        &stop,
        || false,
        stacks::observer(&mut stacks_obs),
    )?;
    w.report.unwatched = source.unwatched();
    stacks::finish(&stacks_obs, &mut w.report);
    stop.exit_on_signal();
    render_report(&w.report, opts.analysis.format, opts.verbose)?;
    charts.write(&w.report)?;
    if let Some(e) = w.failed {
        return Err(e);
    }
    Ok(leak_code(&w.report, a.watch.fail_on_leak))
}

fn leak_code(report: &Report, fail_on_leak: bool) -> Exit {
    if fail_on_leak && report.leaking {
        Exit::Leak
    } else {
        Exit::Ok
    }
}

fn render_report(report: &Report, format: Format, verbose: bool) -> Result<(), Error> {
    let ex = report_renderer(format, output::stdout_color(), verbose);
    stdout_write(|w| {
        if format == Format::Table {
            writeln!(w)?;
        }
        ex.report(report, w)?;
        if format == Format::Table {
            write_unwatched(report, w)?;
        }
        Ok(())
    })
}

/// Below a table report, the processes it leaves out (the JSON report has them as a field).
pub fn write_unwatched(report: &Report, w: &mut dyn Write) -> std::io::Result<()> {
    for u in &report.unwatched {
        writeln!(w, "not watched: {}", u.message)?;
    }
    Ok(())
}

fn snapshot_cmd(a: SnapshotArgs) -> Result<Exit, Error> {
    if !config::has_selection(&a.select) {
        return Err(Error::usage(
            "nothing to snapshot: give --pid PID or --name REGEX",
        ));
    }
    let selector = config::selector(&a.select)?;
    let stop = signals::Stop::install();
    unwatched::raise_fd_limit();
    let mut source = LiveSource::new(selector);
    if !start_source(&mut source, a.select.wait, &stop, None)? {
        return Ok(Exit::Ok);
    }
    let snaps = source.snapshot_all()?;
    for w in source.warnings.drain(..) {
        output::warn(&w.to_string());
    }
    if snaps.is_empty() {
        return Err(Error::failed(
            "every selected process exited before it could be read",
        ));
    }
    let format = config::format(a.format);
    stdout_write(|w| snapshot_renderer(format).snapshots(&snaps, w))?;
    // The process exits right after: freeing tens of thousands of entries one by one would
    // only delay that exit (about a millisecond per 10,000 fds), so leave it to the kernel.
    std::mem::forget(snaps);
    // What was read is printed, but a snapshot that is missing processes is not a success.
    let over_limit = source.over_limit();
    std::mem::forget(source);
    match over_limit {
        0 => Ok(Exit::Ok),
        n => Err(Error::failed(unwatched::limit_message(n))),
    }
}

fn diff_cmd(a: DiffArgs) -> Result<Exit, Error> {
    let analysis = config::analysis(&a.analysis)?;
    let before = load_snapshots(&a.before, &mut output::warn)?;
    let after = load_snapshots(&a.after, &mut output::warn)?;
    let d = compare(&before, &after, &analysis.track);
    stdout_write(|w| diff_renderer(analysis.format).diff(&d, w))?;
    Ok(Exit::Ok)
}

/// Re-analyse a recording: the same pipeline as a watch, with the recording as its source.
pub fn analyse_recording(
    path: &std::path::Path,
    analysis: &config::Analysis,
) -> Result<Report, Error> {
    use fdiff_core::pipeline::{self, NoControl, Plan};
    let f = open(path)?;
    let mut src = RecordingSource::new(path, std::io::BufReader::with_capacity(1 << 16, f))?;
    let tracker = pipeline::tracker(analysis.track.clone(), src.interval_secs());
    let run = pipeline::run(
        &mut src,
        &Plan::to_the_end(),
        tracker,
        &mut [&mut observers::WarnAtOnce],
        &mut NoControl,
    )?;
    if run.tracker.ticks() == 0 {
        return Err(Error::failed(format!(
            "{} holds no tick: nothing to analyse",
            crate::util::quoted(&path.to_string_lossy())
        )));
    }
    Ok(run.tracker.report())
}

fn report_cmd(a: ReportArgs) -> Result<Exit, Error> {
    let analysis = config::analysis(&a.analysis)?;
    let charts = crate::report::html::ChartFiles::open(&a.charts)?;
    let report = analyse_recording(&a.recording, &analysis)?;
    render_report(&report, analysis.format, a.verbose)?;
    charts.write(&report)?;
    Ok(leak_code(&report, a.fail_on_leak))
}

#[cfg(test)]
mod tests;
