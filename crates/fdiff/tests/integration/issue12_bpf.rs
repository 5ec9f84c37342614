//! Issue 12 §4: `fdiff --pid P --stacks` on a process that was started without fdiff: the
//! eBPF probe attaches to it running. Needs root (CI is); elsewhere these skip with a message.

use super::common::*;
use super::issue12_stacks::build;
use serde_json::Value;
use std::process::{Child, Command, Stdio};

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let r = unsafe { libc::geteuid() } == 0;
    if !r {
        eprintln!("skipped: the eBPF probe needs root");
    }
    r
}

/// The C leaker started as an ordinary child (no fdiff in its ancestry).
struct Leaker {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Leaker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(mode: &str, secs: &str) -> Option<Leaker> {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = build(dir.path(), &format!("bpf-{mode}"))?;
    let file = dir.path().join("data");
    std::fs::write(&file, b"x").expect("write");
    let child = Command::new(&exe)
        .arg(&file)
        .arg(secs)
        .arg(mode)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the leaker");
    Some(Leaker { child, _dir: dir })
}

/// `fdiff --pid P --stacks=now -d DUR -f json` with `env`: the report, or None (with a
/// message) when the kernel would not take the probe.
fn watch(pid: u32, dur: &str, env: &[(&str, &str)]) -> Option<Value> {
    watch_when(pid, "now", dur, env)
}

/// [`watch`] with `--stacks=WHEN`.
fn watch_when(pid: u32, when: &str, dur: &str, env: &[(&str, &str)]) -> Option<Value> {
    let mut cmd = fdiff_cmd(&[
        "--pid",
        &pid.to_string(),
        &format!("--stacks={when}"),
        "-d",
        dur,
        "-i",
        "200ms",
        "-q",
        "-f",
        "json",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fdiff");
    let o = finish(child, RUN_LIMIT);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let err = stderr_of(&o);
    if err.contains("watching without stacks") {
        eprintln!("skipped: the eBPF probe is not available here: {err}");
        return None;
    }
    Some(serde_json::from_slice(&o.stdout).expect("json report"))
}

fn group<'a>(r: &'a Value, kind: &str) -> &'a Value {
    r["stacks"]["groups"]
        .as_array()
        .expect("stacks.groups")
        .iter()
        .find(|g| g["kind"] == kind)
        .unwrap_or_else(|| panic!("no leaking {kind} group in {:#}", r["stacks"]))
}

fn functions(stack: &Value) -> Vec<String> {
    stack["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| f["function"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn issue12_bpf_attach_names_leaky_path_with_its_line_not_healthy_path() {
    if !root() {
        return;
    }
    let Some(l) = start("files", "20") else {
        return;
    };
    let Some(r) = watch(l.child.id(), "3s", &[]) else {
        return;
    };
    let g = group(&r, "file");
    let top = &g["survivor_stacks"][0];
    let f = functions(top);
    assert!(f.iter().any(|x| x == "leaky_path"), "{f:?}");
    assert!(!f.iter().any(|x| x == "healthy_path"), "{f:?}");
    let frame = top["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .find(|x| x["function"] == "leaky_path")
        .expect("leaky_path frame");
    assert_eq!(frame["file"], "leak.c", "{frame}");
    assert!(frame["line"].as_u64().is_some(), "{frame}");
    // The healthy path is shown beside it: its opens were seen closed.
    let closed = g["closed_stacks"].as_array().expect("closed_stacks");
    assert!(
        closed
            .iter()
            .any(|s| functions(s).iter().any(|x| x == "healthy_path")),
        "{:#}",
        g
    );
}

#[test]
fn issue12_bpf_attach_names_a_leaked_socket_and_pipe2() {
    if !root() {
        return;
    }
    for (mode, kind, func) in [
        ("socket", "socket", "leaky_socket"),
        ("pipe", "pipe", "leaky_pipe"),
    ] {
        let Some(l) = start(mode, "20") else {
            return;
        };
        let Some(r) = watch(l.child.id(), "3s", &[]) else {
            return;
        };
        let f = functions(&group(&r, kind)["survivor_stacks"][0]);
        assert!(f.iter().any(|x| x == func), "{mode}: {f:?}");
    }
}

#[test]
fn issue12_bpf_a_full_ring_buffer_counts_drops_and_the_watch_goes_on() {
    if !root() {
        return;
    }
    let Some(l) = start("files", "20") else {
        return;
    };
    // A ring of 2 pages holds no open record (each is ~8.3 KiB): every open is a drop.
    let Some(r) = watch(l.child.id(), "2s", &[("FDIFF_STACKS_RING_BYTES", "8192")]) else {
        return;
    };
    let s = &r["stacks"];
    assert!(s["dropped_fds"].as_u64() > Some(0), "{s:#}");
    assert_eq!(s["captured"].as_u64(), Some(0), "{s:#}");
}

#[test]
fn issue12_bpf_a_target_that_exits_while_armed_ends_the_watch_cleanly() {
    if !root() {
        return;
    }
    let Some(mut l) = start("files", "1") else {
        return;
    };
    let Some(r) = watch(l.child.id(), "3s", &[]) else {
        return;
    };
    assert!(l.child.wait().expect("wait").success());
    // Captured while it lived; the report is whole after it exited.
    assert!(
        r["stacks"]["captured"].as_u64() > Some(0),
        "{:#}",
        r["stacks"]
    );
}

#[test]
fn issue12_bpf_a_target_that_execs_while_armed_keeps_its_stacks_and_the_watch_ends_cleanly() {
    if !root() {
        return;
    }
    // Leaks for 2 s, then execs /bin/true (which exits at once).
    let Some(mut l) = start("exec", "2") else {
        return;
    };
    let Some(r) = watch(l.child.id(), "3s", &[]) else {
        return;
    };
    assert!(l.child.wait().expect("wait").success());
    let f = functions(&group(&r, "file")["survivor_stacks"][0]);
    assert!(f.iter().any(|x| x == "leaky_path"), "{f:?}");
}

#[test]
fn issue12_bpf_without_privilege_says_why_in_one_line_and_watches_on() {
    if !root() {
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: no setpriv to drop privileges");
        return;
    }
    // fdiff as nobody, watching a process of nobody's: no CAP_BPF, no CAP_PERFMON.
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg("sh")
        .arg("-c")
        .arg("sleep 5 & exec \"$0\" --pid $! --stacks -d 600ms -i 200ms -q")
        .arg(env!("CARGO_BIN_EXE_fdiff"))
        .output()
        .expect("setpriv");
    if matches!(code(&o), 126 | 127) {
        eprintln!(
            "skipped: nobody cannot run the fdiff binary here: {}",
            show(&o)
        );
        return;
    }
    assert_eq!(code(&o), 0, "{}", show(&o));
    let err = stderr_of(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("--stacks")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("needs root or CAP_BPF+CAP_PERFMON")
            && lines[0].contains("watching without stacks"),
        "{err}"
    );
}

#[test]
fn issue12_bpf_a_target_in_its_own_pid_namespace_is_traced_by_host_pid_and_shows_nspid() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(exe) = build(dir.path(), "bpf-ns") else {
        return;
    };
    let file = dir.path().join("data");
    std::fs::write(&file, b"x").expect("write");
    // unshare forks the leaker as pid 1 of a new pid namespace.
    let Ok(mut ns) = Command::new("unshare")
        .args(["--pid", "--fork"])
        .arg(&exe)
        .arg(&file)
        .args(["20", "files"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        eprintln!("skipped: no unshare");
        return;
    };
    let children = format!("/proc/{0}/task/{0}/children", ns.id());
    let mut host_pid = None;
    for _ in 0..100 {
        host_pid = std::fs::read_to_string(&children).ok().and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
        });
        if host_pid.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let Some(pid) = host_pid else {
        let _ = ns.kill();
        eprintln!("skipped: unshare --pid --fork started no child here");
        return;
    };
    let r = watch(pid, "3s", &[]);
    let _ = ns.kill();
    let _ = ns.wait();
    let Some(r) = r else { return };
    let g = group(&r, "file");
    assert_eq!(g["pid"].as_u64(), Some(u64::from(pid)), "{g:#}");
    assert_eq!(g["nspid"][0].as_u64(), Some(u64::from(pid)), "{g:#}");
    assert_eq!(g["nspid"][1].as_u64(), Some(1), "{g:#}");
    let f = functions(&g["survivor_stacks"][0]);
    assert!(f.iter().any(|x| x == "leaky_path"), "{f:?}");
}

#[test]
fn issue12_bpf_a_thread_s_open_is_its_own_stack() {
    if !root() {
        return;
    }
    let Some(l) = start("thread", "20") else {
        return;
    };
    let Some(r) = watch(l.child.id(), "3s", &[]) else {
        return;
    };
    let g = group(&r, "file");
    let top = &g["survivor_stacks"][0];
    let f = functions(top);
    assert!(f.iter().any(|n| n == "thread_main"), "top stack {f:?}");
    assert!(
        !f.iter().any(|n| n == "main"),
        "the main thread's stack: {f:?}"
    );
    let pid = g["pid"].as_i64();
    let tids = top["tids"].as_array().expect("tids");
    assert!(
        !tids.is_empty() && tids.iter().all(|t| t.as_i64() != pid),
        "tids {tids:?}"
    );
}

#[test]
fn issue12_bpf_default_arming_attaches_at_the_leak_verdict() {
    if !root() {
        return;
    }
    let Some(l) = start("files", "30") else {
        return;
    };
    let Some(r) = watch_when(l.child.id(), "leak", "8s", &[]) else {
        return;
    };
    assert_eq!(r["stacks"]["arming"], "leak");
    let g = group(&r, "file");
    // Armed late: the leak's first half second at least (25 fds; a verdict takes several
    // ticks of growth) has no stack, and the survivors that do are leaky_path's.
    let (surv, cap) = (
        g["survivors"].as_u64().unwrap_or(0),
        g["captured"].as_u64().unwrap_or(0),
    );
    assert!(
        cap > 0 && cap + 25 < surv,
        "survivors {surv} captured {cap}"
    );
    let f = functions(&g["survivor_stacks"][0]);
    assert!(f.iter().any(|n| n == "leaky_path"), "top stack {f:?}");
}

/// `fdiff demo --stacks`: the demo program's leaking files are traced to the code that opens
/// them. (The test binary is a debug build, whose big frames can outgrow the probe's 8 KiB
/// stack copy before `demo_child`'s own frames: Rust's `File::open` path is what is sure.)
#[test]
fn issue12_bpf_demo_names_the_demo_programs_opener() {
    if !root() {
        return;
    }
    let o = finish(
        fdiff_cmd(&[
            "demo",
            "--stacks=now",
            "--duration",
            "3s",
            "--interval",
            "250ms",
            "--quiet",
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fdiff demo"),
        RUN_LIMIT,
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    if stderr_of(&o).contains("without stacks") {
        eprintln!(
            "skipped: the eBPF probe is not available here: {}",
            stderr_of(&o)
        );
        return;
    }
    let r: Value = serde_json::from_slice(&o.stdout).expect("json report");
    let g = r["stacks"]["groups"]
        .as_array()
        .expect("stacks.groups")
        .iter()
        .find(|g| g["key"].as_str().is_some_and(|k| k.contains("upload-")))
        .unwrap_or_else(|| panic!("no upload group in {:#}", r["stacks"]));
    let top = &g["survivor_stacks"][0];
    let f = functions(top);
    assert!(
        f.iter().any(|x| x.contains("File>::open")) || f.iter().any(|x| x.contains("demo_child")),
        "the demo program's opener is missing: {f:?}"
    );
    assert_eq!(
        f.first().map(String::as_str),
        Some("__libc_open64"),
        "{f:?}"
    );
    // The demo never closes a TCP connection: neither side's group may list the other
    // side's open (still open, in the other group) as "opened and closed again".
    for g in r["stacks"]["groups"].as_array().expect("groups") {
        if g["kind"] == "socket" {
            assert_eq!(
                g["closed_stacks"].as_array().map(Vec::len),
                Some(0),
                "a live socket of another group counted as closed: {g:#}"
            );
        }
    }
}
