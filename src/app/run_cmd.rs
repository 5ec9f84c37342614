//! `fdiff run -- CMD`: start a command, watch it and its descendants until it exits, report, and
//! exit with its status (or 3 for a leak with --fail-on-leak) — a leak gate for CI.

use super::output;
use super::signals::Stop;
use super::watch::{self, WatchOptions};
use crate::cli::RunArgs;
use crate::config;
use crate::error::Error;
use crate::exit_codes;
use crate::report::exporter;
use crate::source::live::LiveSource;
use crate::source::select::Selector;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};

pub fn run(a: RunArgs) -> Result<i32, Error> {
    let timing = config::timing(&a.watch.timing)?;
    let analysis = config::analysis(&a.watch.analysis)?;
    let Some((prog, args)) = a.command.split_first() else {
        return Err(Error::usage("no command to run: fdiff run -- CMD [ARGS…]"));
    };
    let stop = Stop::install();
    let mut child = Command::new(prog).args(args).spawn().map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "command not found".to_owned(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (is it executable?)".to_owned()
            }
            _ => e.to_string(),
        };
        Error::with_code(
            format!("cannot run '{}': {why}", prog.to_string_lossy()),
            exit_codes::CANNOT_START,
        )
    })?;
    let pid = child.id() as i32;
    // A command may be gone before the first tick: wake the sleep on its exit, and name it
    // in the report with what /proc told right after the start.
    stop.wake_on_exit(pid);
    let first_look = watch::first_look(pid);
    let mut source = LiveSource::new(Selector {
        pids: vec![pid],
        children: true,
        ..Selector::default()
    });
    // A command that exits at once leaves nothing to watch; its status still counts.
    let _ = source.start();
    let opts = WatchOptions {
        timing,
        analysis,
        record: a.watch.record,
        keep_waiting: true,
        verbose: a.watch.verbose,
    };
    let mut status: Option<ExitStatus> = None;
    let mut done = || {
        if let Some(sig) = stop.take_forward() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::try_from(sig).ok(),
            );
        }
        match child.try_wait() {
            Ok(Some(s)) => {
                status = Some(s);
                true
            }
            Ok(None) => false,
            Err(_) => true,
        }
    };
    // CMD owns stdout: everything of fdiff's goes to stderr.
    let to = if opts.timing.quiet {
        watch::LiveTo::Nowhere
    } else {
        watch::LiveTo::Stderr
    };
    let watched = watch::watch_to(&mut source, &opts, to, &stop, &mut done)?;
    let mut report = watched.report;
    watch::name_unseen(&mut report, first_look);
    // The watch may have ended first (--duration, --count, a signal): the command's status
    // is still what fdiff exits with.
    let status = match status {
        Some(s) => Some(s),
        None => wait_forwarding(&mut child, &stop),
    };
    stop.exit_on_signal();
    let ex = exporter(
        opts.analysis.format,
        a.output.is_none() && output::stderr_color(),
    );
    let res = match &a.output {
        Some(path) => std::fs::File::create(path)
            .and_then(|mut f| ex.report(&report, &mut f).and_then(|()| f.flush()))
            .map_err(|e| Error::io(&format!("write '{}'", path.display()), &e)),
        None => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err);
            ex.report(&report, &mut err)
                .map_err(|e| output::write_err(e, "stderr"))
        }
    };
    res?;
    if let Some(e) = watched.failed {
        return Err(e);
    }
    let code = status.map_or(exit_codes::ERROR, status_code);
    Ok(if a.watch.fail_on_leak && report.leaking && code == 0 {
        exit_codes::LEAK
    } else {
        code
    })
}

fn wait_forwarding(child: &mut Child, stop: &Stop) -> Option<ExitStatus> {
    loop {
        if let Some(sig) = stop.take_forward() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::try_from(sig).ok(),
            );
        }
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

/// A shell's convention: the exit code, or 128 + the signal that killed it.
pub fn status_code(s: ExitStatus) -> i32 {
    match (s.code(), s.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => exit_codes::ERROR,
    }
}
