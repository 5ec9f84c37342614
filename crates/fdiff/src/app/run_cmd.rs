//! `fdiff run -- CMD`: start a command, watch it and its descendants until it exits, report, and
//! exit with its status (or 3 for a leak with --fail-on-leak) — a leak gate for CI.

use super::output;
use super::signals::Stop;
use super::watch::{self, WatchOptions};
use crate::cli::RunArgs;
use crate::config;
use crate::error::Error;
use crate::exit_codes::Exit;
use crate::report::report_renderer;
use crate::source::live::LiveSource;
use crate::source::select::Selector;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};

pub fn run(a: RunArgs) -> Result<Exit, Error> {
    let timing = config::timing(&a.watch.timing)?;
    let analysis = config::analysis(&a.watch.analysis)?;
    let Some((prog, args)) = a.command.split_first() else {
        return Err(Error::usage("no command to run: fdiff run -- CMD [ARGS…]"));
    };
    // Opened before the command starts: a bad path or a FIFO nobody reads fails at once, not
    // after the whole run.
    let mut out_file = a
        .output
        .as_deref()
        .map(crate::report::record::create_output)
        .transpose()?;
    let charts = crate::report::html::ChartFiles::open(&a.watch.charts)?;
    let stop = Stop::install();
    let mut cmd = Command::new(prog);
    cmd.args(args);
    // With --stacks the tracer thread starts the command and alone waits for it.
    let mut child = match a.watch.stacks {
        None => Started::Child(cmd.spawn().map_err(|e| cannot_start(prog, &e))?),
        Some(when) => {
            Started::Traced(super::stacks::spawn(cmd, when).map_err(|e| cannot_start(prog, &e))?)
        }
    };
    let pid = child.id();
    // Only now: the command keeps the fd limit it was given, which its leak is measured
    // against.
    crate::source::unwatched::raise_fd_limit();
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
    let mut stacks_obs = match (&child, a.watch.stacks) {
        (Started::Traced(t), Some(when)) => Some(super::stacks::StacksObserver::new(
            super::stacks::Capturer::Ptrace(t.clone()),
            super::stacks::arming(when),
            opts.analysis.track.group_by,
        )),
        _ => None,
    };
    let mut status: Option<ExitStatus> = None;
    let mut done = || {
        if let Some(sig) = stop.take_forward() {
            forward(pid, sig);
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
    let to = if crate::tui::wanted(opts.timing.quiet, a.watch.timing.no_tui) {
        watch::LiveTo::Tui { redraw_all: true }
    } else if opts.timing.quiet {
        watch::LiveTo::Nowhere
    } else {
        watch::LiveTo::Stderr
    };
    let watched = watch::watch_to_with(
        &mut source,
        &opts,
        to,
        &stop,
        &mut done,
        super::stacks::observer(&mut stacks_obs),
    )?;
    let mut report = watched.report;
    report.unwatched = source.unwatched();
    watch::name_unseen(&mut report, first_look);
    super::stacks::finish(&stacks_obs, &mut report);
    // The watch may have ended first (--duration, --count, a signal): the command's status
    // is still what fdiff exits with.
    let status = match status {
        Some(s) => Some(s),
        None => wait_forwarding(&mut child, &stop),
    };
    stop.exit_on_signal();
    let ex = report_renderer(
        opts.analysis.format,
        a.output.is_none() && output::stderr_color(),
        a.watch.verbose,
    );
    let res = match (&mut out_file, &a.output) {
        (Some(f), Some(path)) => ex
            .report(&report, f)
            .and_then(|()| f.flush())
            .map_err(|e| Error::io(&format!("write '{}'", path.display()), &e)),
        _ => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err);
            ex.report(&report, &mut err)
                .and_then(|()| {
                    if opts.analysis.format == crate::report::Format::Table {
                        if let Some(s) = &report.stacks {
                            super::stacks::write_table(s, &mut err)?;
                        }
                        super::write_unwatched(&report, &mut err)
                    } else {
                        Ok(())
                    }
                })
                .map_err(|e| output::write_err(e, "stderr"))
        }
    };
    res?;
    charts.write(&report)?;
    if let Some(e) = watched.failed {
        return Err(e);
    }
    let code = status.map_or(Exit::Error, status_code);
    Ok(if a.watch.fail_on_leak && report.leaking && code.is_ok() {
        Exit::Leak
    } else {
        code
    })
}

/// The command: a plain child, or one the stacks tracer started (only its thread may wait
/// for it: a wait from here would take the tracer's ptrace stops).
enum Started {
    Child(Child),
    Traced(fdiff_stacks::Tracer),
}

impl Started {
    fn id(&self) -> i32 {
        match self {
            Started::Child(c) => c.id() as i32,
            Started::Traced(t) => t.pid(),
        }
    }

    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match self {
            Started::Child(c) => c.try_wait(),
            Started::Traced(t) => Ok(t.status()),
        }
    }
}

fn wait_forwarding(child: &mut Started, stop: &Stop) -> Option<ExitStatus> {
    loop {
        if let Some(sig) = stop.take_forward() {
            forward(child.id(), sig);
        }
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

/// A shell's convention: the exit code, or 128 + the signal that killed it.
pub fn status_code(s: ExitStatus) -> Exit {
    match (s.code(), s.signal()) {
        (Some(c), _) => Exit::Command(c),
        (None, Some(sig)) => Exit::Command(128 + sig),
        (None, None) => Exit::Error,
    }
}

/// The line for a command that could not be started, with a shell's exit code: 127 when
/// something is missing, 126 when it is there but cannot be executed.
fn cannot_start(prog: &OsStr, e: &std::io::Error) -> Error {
    let shown = crate::util::escape_control(&prog.to_string_lossy()).into_owned();
    let found = resolve(prog);
    let (why, code) = match (e.kind(), &found) {
        (std::io::ErrorKind::NotFound, None) => ("command not found".to_owned(), CANNOT_FIND),
        // The file is there, so what exec could not find is what it needs to run it.
        (std::io::ErrorKind::NotFound, Some(path)) => match interpreter(path) {
            Some(interp) => (
                format!(
                    "its interpreter '{}' (from its #! line) does not exist",
                    crate::util::escape_control(&interp.to_string_lossy())
                ),
                CANNOT_FIND,
            ),
            None => (
                "its program interpreter (the dynamic loader it names) does not exist".to_owned(),
                CANNOT_FIND,
            ),
        },
        (std::io::ErrorKind::PermissionDenied, found) => {
            let interp = found.as_deref().and_then(interpreter);
            match interp {
                Some(i) if is_file(&i) && !is_executable(&i) => (
                    format!(
                        "its interpreter '{}' (from its #! line) is not executable",
                        crate::util::escape_control(&i.to_string_lossy())
                    ),
                    CANNOT_EXECUTE,
                ),
                _ => (
                    "permission denied (is it executable?)".to_owned(),
                    CANNOT_EXECUTE,
                ),
            }
        }
        _ => (e.to_string(), CANNOT_EXECUTE),
    };
    Error::with_code(format!("cannot run '{shown}': {why}"), code)
}

/// A shell's 127: the command (or what it needs to run) does not exist.
const CANNOT_FIND: Exit = Exit::CannotStart;
/// A shell's 126: found, but it cannot be executed.
const CANNOT_EXECUTE: Exit = Exit::CannotExecute;

/// The file exec would run for `prog`: itself when it names a path, else the first match on
/// $PATH, as execvp looks.
fn resolve(prog: &OsStr) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    if prog.as_bytes().contains(&b'/') {
        let p = PathBuf::from(prog);
        return is_file(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(prog))
        .find(|p| is_file(p))
}

fn is_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// The interpreter a `#!` line names, read from the first bytes of the script.
fn interpreter(script: &Path) -> Option<PathBuf> {
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    let mut head = [0u8; 256];
    let mut f = std::fs::File::open(script).ok()?;
    let n = f.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next()?;
    let name = line
        .split(|&b| b == b' ' || b == b'\t')
        .find(|w| !w.is_empty())?;
    Some(PathBuf::from(OsStr::from_bytes(name)))
}

/// Pass a signal fdiff caught (SIGINT sent by a process, or SIGTERM) on to the command; a
/// command that is gone already needs nothing.
fn forward(pid: i32, sig: i32) {
    if let (Some(pid), Some(sig)) = (
        rustix::process::Pid::from_raw(pid),
        rustix::process::Signal::from_named_raw(sig),
    ) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}
