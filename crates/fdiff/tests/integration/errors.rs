//! Errors: one line on stderr, the documented exit code, never a panic.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn missing_pid_is_one_line_naming_it() {
    // Find a pid that is surely free right now.
    let pid = (424_242..500_000)
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .expect("a free pid");
    let o = fdiff(&["snapshot", "--pid", &pid.to_string()]);
    let line = assert_error(&o, 1);
    assert!(line.contains(&format!("'{pid}'")), "{line}");
    assert!(o.stdout.is_empty());
    let o = fdiff(&["--pid", &pid.to_string(), "--duration", "1s"]);
    let line = assert_error(&o, 1);
    assert!(line.contains(&format!("'{pid}'")), "{line}");
}

#[test]
fn zombie_is_one_line_saying_so() {
    let mut child = Command::new("sh")
        .args(["-c", "exit 0"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let pid = child.id();
    let zombie = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .map(|r| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    });
    assert!(zombie, "pid {pid} did not become a zombie");
    let o = fdiff(&["snapshot", "--pid", &pid.to_string()]);
    let _ = child.wait();
    let line = assert_error(&o, 1);
    assert!(line.contains("zombie"), "{line}");
    assert!(line.contains(&format!("'{pid}'")), "{line}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--pid", "1", "--match", "("][..],
        &["--pid", "1", "--interval", "5x"][..],
        &["--pid", "1", "--duration", "soon"][..],
        &["--pid", "abc"][..],
        &["--pid", "1", "--bogus"][..],
        &["snapshot", "--name", "("][..],
        &["snapshot"][..],
        &["--interval", "1s"][..],
        &["diff", "only-one.json"][..],
        &["run", "--interval", "5x", "--", "true"][..],
        &["demo", "--duration", "x"][..],
    ] {
        let o = fdiff(args);
        let line = assert_error(&o, 2);
        assert!(o.stdout.is_empty(), "{args:?}: {}", show(&o));
        assert!(line.len() < 300, "{args:?}: {line}");
    }
    let o = fdiff(&["--pid", "1", "--match", "("]);
    let line = stderr_of(&o);
    assert!(line.contains("'('") && line.contains("--match"), "{line}");
    let o = fdiff(&["--pid", "1", "--interval", "5x"]);
    let line = stderr_of(&o);
    assert!(
        line.contains("'5x'") && line.contains("--interval"),
        "{line}"
    );
}

#[test]
fn no_arguments_print_usage_and_exit_2() {
    let o = fdiff(&[]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    let err = stderr_of(&o);
    assert!(err.contains("Usage"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.stdout.is_empty(), "{}", show(&o));
    // --help and --version are success on stdout.
    let o = fdiff(&["--help"]);
    assert_eq!(code(&o), 0);
    assert!(stdout_of(&o).contains("Exit codes"), "{}", show(&o));
    let o = fdiff(&["--version"]);
    assert_eq!(code(&o), 0);
    assert!(stdout_of(&o).starts_with("fdiff "), "{}", show(&o));
}

#[test]
fn closed_stdout_is_quiet_success() {
    let mut fx = Fixture::new(&[]);
    let filled = fx.ok("fill 2000");
    assert_eq!(filled["opened"], serde_json::json!(2000));
    for format in ["table", "json"] {
        let mut child = fdiff_cmd(&["snapshot", "--pid", &pid_arg(fx.pid), "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fdiff");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        out.read_line(&mut first).expect("read one line");
        assert!(!first.is_empty());
        drop(out);
        let o = finish(child, RUN_LIMIT);
        let err = stderr_of(&o);
        assert_eq!(code(&o), 0, "{format}: {}", show(&o));
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe") && err.is_empty(),
            "{format}: {err}"
        );
    }
}
