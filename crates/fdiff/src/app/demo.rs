//! `fdiff demo`: watch a bundled leaky program (fdiff itself, re-executed as the hidden
//! `__demo-child`) for a few seconds and report — the one command to try fdiff on a fresh
//! machine.

use super::output;
use super::signals::Stop;
use super::watch::{self, WatchOptions};
use crate::cli::DemoArgs;
use crate::config::{self, Analysis, Timing};
use crate::error::Error;
use crate::exit_codes::Exit;
use crate::report::{Format, report_renderer};
use crate::source::live::LiveSource;
use crate::source::select::Selector;
use crate::track::TrackOptions;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

/// Ends the demo program however the demo ends: closing its stdin makes it clean up and exit.
struct DemoChild(Option<Child>);

impl Drop for DemoChild {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            drop(c.stdin.take());
            // Up to 5 s to remove its files (a loaded machine is slow), then it is killed.
            for _ in 0..250 {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn run(a: DemoArgs) -> Result<Exit, Error> {
    let duration = config::watch_duration(&a.duration)?;
    let interval = config::interval(&a.interval)?;
    let format = config::format(a.format);
    let charts = crate::report::html::ChartFiles::open(&a.charts)?;
    let exe = std::env::current_exe().map_err(|e| Error::io("find the fdiff executable", &e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("__demo-child");
    let mut child = DemoChild(Some(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::io("start the demo program", &e))?,
    ));
    let pid = wait_ready(&mut child)?;
    // The demo program already runs: its stacks come from the eBPF probe, as for any running
    // process (`fdiff --pid P --stacks`).
    let mut stacks_obs = super::stacks::StacksObserver::probe(
        a.stacks,
        TrackOptions::default().group_by,
        "the demo goes on without stacks",
    );
    let stop = Stop::install();
    let say = |s: &str| {
        if !a.quiet {
            if format == Format::Json {
                let _ = writeln!(std::io::stderr(), "{s}");
            } else {
                let _ = writeln!(std::io::stdout(), "{s}");
            }
        }
    };
    say(&format!(
        "fdiff demo: watching a built-in program (pid {pid}) for {} — it leaks files, TCP connections \
         to its own listener and eventfds, and churns temp files normally.\n",
        humantime::format_duration(duration)
    ));
    let mut source = LiveSource::new(Selector {
        pids: vec![pid],
        ..Selector::default()
    });
    source.start()?;
    let opts = WatchOptions {
        timing: Timing {
            interval,
            duration: Some(duration),
            count: None,
            quiet: a.quiet,
        },
        analysis: Analysis {
            track: TrackOptions::default(),
            format,
        },
        record: None,
        keep_waiting: false,
        verbose: false,
    };
    let to = if crate::tui::wanted(a.quiet, a.no_tui) {
        watch::LiveTo::Tui { redraw_all: false }
    } else {
        watch::LiveTo::beside(format, a.quiet)
    };
    let mut report = watch::watch_to_with(
        &mut source,
        &opts,
        to,
        &stop,
        || false,
        super::stacks::observer(&mut stacks_obs),
    )?
    .report;
    super::stacks::finish(&stacks_obs, &mut report);
    drop(child);
    stop.exit_on_signal();
    let ex = report_renderer(format, output::stdout_color(), false);
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let res = (|| {
        if format == Format::Table {
            writeln!(w)?;
        }
        ex.report(&report, &mut w)?;
        if format == Format::Table
            && let Some(s) = &report.stacks
        {
            super::stacks::write_table(s, &mut w)?;
        }
        Ok(())
    })();
    res.map_err(|e| output::write_err(e, "stdout"))?;
    charts.write(&report)?;
    say(
        "\nNext: point fdiff at your own process with 'fdiff --pid PID', or at a worker pool with \
         'fdiff --name NAME --children'.",
    );
    Ok(Exit::Ok)
}

/// The demo program: `fdiff __demo-child`.
pub fn child() -> i32 {
    super::demo_child::run()
}

/// The program prints `{"ready":true,"pid":N}` once it runs.
fn wait_ready(child: &mut DemoChild) -> Result<i32, Error> {
    let Some(c) = child.0.as_mut() else {
        return Err(Error::failed("the demo program did not start"));
    };
    let Some(out) = c.stdout.take() else {
        return Err(Error::failed("the demo program has no output"));
    };
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .map_err(|e| Error::io("read from the demo program", &e))?;
    let v: serde_json::Value = serde_json::from_str(&line).map_err(|_| {
        Error::failed(format!(
            "the demo program said {}, not that it was ready",
            config::quoted(line.trim())
        ))
    })?;
    v.get("pid")
        .and_then(serde_json::Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| Error::failed("the demo program did not say its pid"))
}
