//! Issue 11: the full-screen live view, driven for real in a detached tmux pane (its own
//! server socket per test, so concurrent runs never meet): redrawn in place, `LEAK` shown
//! while it runs, and the terminal restored on `q` and on SIGTERM.

use super::common::{FDIFF, signal, wait_for};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Generous: a loaded machine builds and draws slowly.
const WAIT: Duration = Duration::from_secs(60);

/// A tmux server of the test's own, killed (with what runs in it) when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A detached `cols`×`rows` session running fdiff with `args`; None (and a printed
    /// message) when tmux is not installed.
    fn start(cols: u16, rows: u16, args: &[&str]) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("skipped: tmux is not installed");
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "fdiff-issue11-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let t = Tmux { socket };
        let (c, r) = (cols.to_string(), rows.to_string());
        let mut a = vec![
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &c,
            "-y",
            &r,
            "-e",
            "NO_COLOR=",
            "sh",
            "-c",
            // A shell stays after fdiff, on the same terminal, to say its status: what
            // fdiff left behind (alternate screen, hidden cursor) is still in force there.
            "\"$0\" \"$@\"; echo \"fdiff-status=$?\"; exec sleep 600",
            FDIFF,
        ];
        a.extend_from_slice(args);
        let o = t.run(&a);
        assert!(o.status.success(), "tmux new-session: {o:?}");
        Some(t)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn capture(&self) -> Vec<String> {
        let o = self.run(&["capture-pane", "-p", "-t", "t"]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn format(&self, f: &str) -> String {
        let o = self.run(&["display-message", "-p", "-t", "t", f]);
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    fn keys(&self, k: &str) {
        self.run(&["send-keys", "-t", "t", k]);
    }

    /// fdiff has exited (the shell said its status).
    fn dead(&self) -> bool {
        self.capture()
            .iter()
            .any(|l| l.starts_with("fdiff-status="))
    }

    fn status(&self) -> String {
        self.capture()
            .iter()
            .find_map(|l| l.strip_prefix("fdiff-status=").map(str::to_owned))
            .unwrap_or_default()
    }

    /// fdiff's pid: the child of the pane's shell.
    fn fdiff_pid(&self) -> i32 {
        let sh = self.format("#{pane_pid}");
        let mut pid = None;
        wait_for(WAIT, || {
            let kids = std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children"))
                .unwrap_or_default();
            pid = kids.split_whitespace().next().and_then(|p| p.parse().ok());
            pid.is_some()
        });
        pid.expect("fdiff's pid")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// A screen of the live view: the header on the first row, the key line on the last.
fn is_view(screen: &[String], rows: usize) -> bool {
    screen.len() == rows
        && screen[0].starts_with("fdiff · pid ")
        && screen[rows - 1].contains("q quit")
}

/// A table row judged leaking (not the header's summary line).
fn leak_row(screen: &[String]) -> bool {
    screen.iter().skip(2).any(|l| {
        let l = l.trim_start_matches(['›', ' ']);
        l.starts_with("LEAK ") && (l.contains("upload-") || l.contains("tcp"))
    })
}

/// How long to let the leak go on before `q`: the report judges the whole watch again, and
/// over its first few ticks a steady leak seen at 4/s through 250 ms ticks can show two equal
/// counts last (no new high in the last quarter), which is rightly "not yet a leak". Four
/// seconds (16 ticks) give the last quarter four ticks, so the report's verdict no longer hangs
/// on one tick's phase. (Narrow headers drop the tick number, so this is time, not ticks.)
const LEAK_BEFORE_Q: Duration = Duration::from_secs(4);

/// Drive the demo in a pane of `cols`×`rows`: in place, LEAK before the end, `q` restores.
fn demo_in_place_then_q(cols: u16, rows: u16) {
    let Some(t) = Tmux::start(
        cols,
        rows,
        &["demo", "--duration", "10m", "--interval", "250ms"],
    ) else {
        return;
    };
    let mut screens = Vec::new();
    let ok = wait_for(WAIT, || {
        let s = t.capture();
        let done = is_view(&s, rows as usize) && leak_row(&s);
        if is_view(&s, rows as usize) {
            screens.push(s);
        }
        done
    });
    let last = screens.last().cloned().unwrap_or_default();
    assert!(
        ok,
        "no LEAK row in the live view; last screen:\n{}",
        last.join("\n")
    );
    assert_eq!(
        t.format("#{alternate_on}"),
        "1",
        "the view is on the alternate screen"
    );
    // Redrawn in place: later screens are the same layout (header first, keys last, the
    // header once), with the tick moving on.
    assert!(wait_for(WAIT, || {
        let s = t.capture();
        let moved = is_view(&s, rows as usize) && s != last;
        if is_view(&s, rows as usize) {
            screens.push(s);
        }
        moved
    }));
    for s in &screens {
        assert!(is_view(s, rows as usize), "not the view:\n{}", s.join("\n"));
        let headers = s.iter().filter(|l| l.starts_with("fdiff · pid ")).count();
        assert_eq!(headers, 1, "scrolled, not redrawn:\n{}", s.join("\n"));
    }
    let table_header = screens
        .last()
        .and_then(|s| s.iter().find(|l| l.contains("verdict")).cloned())
        .unwrap_or_default();
    for col in ["verdict", "kind", "key", "count", "rate", "trend"] {
        assert!(
            table_header.contains(col),
            "{col} missing at {cols}x{rows}: {table_header}"
        );
    }
    std::thread::sleep(LEAK_BEFORE_Q);
    let s = t.capture();
    assert!(
        is_view(&s, rows as usize) && leak_row(&s),
        "the LEAK row did not hold:\n{}",
        s.join("\n")
    );
    t.keys("q");
    assert!(wait_for(WAIT, || t.dead()), "q did not end fdiff");
    let screen = t.capture().join("\n");
    assert_eq!(t.status(), "0", "{screen}");
    assert_eq!(t.format("#{alternate_on}"), "0", "alternate screen left on");
    assert_eq!(t.format("#{cursor_flag}"), "1", "cursor left hidden");
    assert!(
        screen.contains("verdict: LEAK"),
        "no report after q:\n{screen}"
    );
    assert!(
        !screen.contains("q quit"),
        "the view is still on the screen:\n{screen}"
    );
}

#[test]
fn issue11_tui_demo_120x40_redraws_in_place_shows_leak_and_q_restores() {
    demo_in_place_then_q(120, 40);
}

#[test]
fn issue11_tui_demo_80x24_shows_the_essential_columns() {
    demo_in_place_then_q(80, 24);
}

#[test]
fn issue11_tui_sigterm_restores_the_terminal_and_prints_the_report() {
    let Some(t) = Tmux::start(
        100,
        30,
        &["demo", "--duration", "10m", "--interval", "250ms"],
    ) else {
        return;
    };
    assert!(
        wait_for(WAIT, || is_view(&t.capture(), 30)),
        "no live view:\n{}",
        t.capture().join("\n")
    );
    let pid = t.fdiff_pid();
    signal(pid, libc::SIGTERM);
    assert!(wait_for(WAIT, || t.dead()), "SIGTERM did not end fdiff");
    let screen = t.capture().join("\n");
    assert_eq!(t.format("#{alternate_on}"), "0", "alternate screen left on");
    assert_eq!(t.format("#{cursor_flag}"), "1", "cursor left hidden");
    assert!(
        screen.contains("verdict:"),
        "no report after SIGTERM:\n{screen}"
    );
}

#[test]
fn issue11_no_tui_keeps_the_live_lines_on_a_terminal() {
    let Some(t) = Tmux::start(
        120,
        40,
        &[
            "demo",
            "--no-tui",
            "--duration",
            "3s",
            "--interval",
            "250ms",
        ],
    ) else {
        return;
    };
    assert!(wait_for(WAIT, || t.dead()), "demo did not end");
    let screen = t.capture().join("\n");
    assert!(
        screen.contains("LEAK suspected"),
        "no live lines:\n{screen}"
    );
    assert!(!screen.contains("q quit"), "{screen}");
}

#[test]
fn issue11_tui_follows_a_resize_to_80x24_and_back() {
    let Some(t) = Tmux::start(
        120,
        40,
        &["demo", "--duration", "10m", "--interval", "250ms"],
    ) else {
        return;
    };
    assert!(
        wait_for(WAIT, || is_view(&t.capture(), 40)),
        "no live view:\n{}",
        t.capture().join("\n")
    );
    for (cols, rows) in [(80u16, 24u16), (120, 40)] {
        let o = t.run(&[
            "resize-window",
            "-t",
            "t",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
        assert!(o.status.success(), "tmux resize-window: {o:?}");
        // Redrawn to the new size: header on the first row, keys on the last, nothing wider.
        assert!(
            wait_for(WAIT, || {
                let s = t.capture();
                is_view(&s, rows as usize)
                    && s.iter().all(|l| l.chars().count() <= cols as usize)
                    && s.iter().any(|l| l.contains("verdict"))
            }),
            "not redrawn at {cols}x{rows}:\n{}",
            t.capture().join("\n")
        );
    }
    t.keys("q");
    assert!(wait_for(WAIT, || t.dead()), "q did not end fdiff");
    assert_eq!(t.status(), "0", "{}", t.capture().join("\n"));
    assert_eq!(t.format("#{alternate_on}"), "0", "alternate screen left on");
}

#[test]
fn issue11_tui_of_run_ends_when_the_command_exits_and_restores() {
    // `run` of a command that leaks a file every 100 ms for 3 s, then exits: the view ends
    // by itself, the report is printed on the normal screen, the command's status is fdiff's.
    let script = "i=0; while [ $i -lt 30 ]; do exec {fd}>/tmp/fdiff-issue11-run-$$-$i; \
                  i=$((i+1)); sleep 0.1; done; rm -f /tmp/fdiff-issue11-run-$$-*; exit 7";
    let Some(t) = Tmux::start(
        120,
        40,
        &["run", "--interval", "250ms", "--", "bash", "-c", script],
    ) else {
        return;
    };
    // The command's `sleep`s are watched too: the header names processes, not one pid.
    assert!(
        wait_for(WAIT, || {
            let s = t.capture();
            s.len() == 40 && s[0].starts_with("fdiff · ") && s[39].contains("q quit")
        }),
        "no live view:\n{}",
        t.capture().join("\n")
    );
    assert!(
        wait_for(WAIT, || t.dead()),
        "the view did not end with the command"
    );
    let screen = t.capture().join("\n");
    assert_eq!(t.format("#{alternate_on}"), "0", "alternate screen left on");
    assert_eq!(t.format("#{cursor_flag}"), "1", "cursor left hidden");
    assert!(screen.contains("verdict:"), "no report:\n{screen}");
    assert!(
        !screen.contains("q quit"),
        "the view is still on the screen:\n{screen}"
    );
    assert_eq!(t.status(), "7", "the command's status:\n{screen}");
}
