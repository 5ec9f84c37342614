//! The `watch` example is the acceptance test of the core's public API: run against a real
//! process that leaks (and one that does not), it must name the leaking group and only it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The built example: beside this test's `deps/` directory when `cargo test` built every
/// target, else built once into a target directory of its own (the running cargo holds the
/// lock of the main one).
fn example() -> PathBuf {
    let me = std::env::current_exe().expect("current_exe");
    let profile_dir = me.parent().and_then(Path::parent).expect("profile dir");
    let beside = profile_dir.join("examples").join("watch");
    if beside.is_file() {
        return beside;
    }
    let target_dir = profile_dir
        .parent()
        .unwrap_or(profile_dir)
        .join("fdiff-core-example");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "fdiff-core",
            "--example",
            "watch",
            "--manifest-path",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build --example watch: {status}");
    target_dir.join("debug/examples/watch")
}

/// A bash that opens `/etc/hostname` `per_sec` times a second for a while, then sleeps.
fn opener(per_sec: u32) -> Child {
    let script = if per_sec == 0 {
        "exec {a}</etc/hostname; sleep 30".to_owned()
    } else {
        format!(
            "for i in $(seq 1 {}); do exec {{fd}}</etc/hostname; sleep {}; done; sleep 30",
            per_sec * 10,
            1.0 / f64::from(per_sec)
        )
    };
    Command::new("bash")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn bash")
}

fn watch(exe: &Path, pid: u32, secs: u32) -> String {
    let out = Command::new(exe)
        .args([pid.to_string(), secs.to_string()])
        .output()
        .expect("run the example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn issue10_example_watch_names_the_leaking_group_only() {
    // Built before the processes start, so their opening is under watch.
    let exe = example();
    let (mut leaky, mut steady) = (opener(10), opener(0));
    let (l, s) = (leaky.id(), steady.id());
    let calm = {
        let exe = exe.clone();
        std::thread::spawn(move || watch(&exe, s, 3))
    };
    let leak = watch(&exe, l, 3);
    let calm = calm.join().expect("thread");
    let _ = (leaky.kill(), steady.kill(), leaky.wait(), steady.wait());
    assert!(
        leak.lines()
            .any(|l| l.starts_with(&format!("LEAK pid {} file /etc/hostname: ", leaky.id()))),
        "{leak}"
    );
    assert_eq!(leak.lines().count(), 1, "{leak}");
    assert_eq!(
        calm.trim(),
        format!("no leak in pid {s} over 3 s"),
        "{calm}"
    );
}

#[test]
fn issue10_example_watch_refuses_a_missing_pid() {
    let out = Command::new(example())
        .arg("999999999")
        .output()
        .expect("run the example");
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
