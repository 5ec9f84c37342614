//! Issue 2: `fdiff snapshot` decodes every kind of fd exactly, in JSON and in the table.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Every fd of the snapshot by number.
fn by_fd(snap: &Value) -> BTreeMap<i64, &Value> {
    snap["fds"]
        .as_array()
        .expect("fds")
        .iter()
        .map(|e| (e["fd"].as_i64().expect("fd number"), e))
        .collect()
}

fn snapshot_json(pid: i32) -> Value {
    let snap = fdiff_json(&["snapshot", "--pid", &pid_arg(pid), "--format", "json"]);
    assert!(snap.is_object(), "one process gives one object: {snap}");
    snap
}

#[test]
fn issue2_snapshot_decodes_every_kind() {
    let mut fx = Fixture::new(&[]);
    let kinds = fx.ok("kinds");
    let want = kinds["fds"].as_object().expect("fds object").clone();
    let snap = snapshot_json(fx.pid);
    let fds = by_fd(&snap);

    let mut checked = 0;
    for (name, exp) in &want {
        let fd = exp["fd"].as_i64().expect("fd");
        let e = *fds
            .get(&fd)
            .unwrap_or_else(|| panic!("{name}: fd {fd} missing from the snapshot"));
        let ctx = format!("{name} (fd {fd}): {e}");
        let kind = e["kind"].as_str().unwrap_or_default();
        match name.as_str() {
            "file" | "weird" => {
                assert_eq!(kind, "file", "{ctx}");
                assert_eq!(e["path"], exp["path"], "{ctx}");
                assert_eq!(e["deleted"], json!(false), "{ctx}");
                assert!(e.get("target_hex").is_none(), "{ctx}");
            }
            "deleted" => {
                assert_eq!(kind, "file", "{ctx}");
                assert_eq!(e["deleted"], json!(true), "{ctx}");
                assert_eq!(e["path"], exp["path"], "path without the suffix: {ctx}");
                assert!(
                    !e["path"]
                        .as_str()
                        .unwrap_or_default()
                        .ends_with(" (deleted)")
                );
                assert_eq!(e["size"], json!(4096), "{ctx}");
            }
            "fake_deleted" => {
                assert_eq!(kind, "file", "{ctx}");
                assert_eq!(e["deleted"], json!(false), "{ctx}");
                assert_eq!(e["path"], exp["path"], "{ctx}");
                assert!(
                    e["path"]
                        .as_str()
                        .unwrap_or_default()
                        .ends_with(" (deleted)")
                );
            }
            "nonutf8" => {
                assert_eq!(kind, "file", "{ctx}");
                assert_eq!(e["target_hex"], exp["path_hex"], "{ctx}");
                assert_eq!(e["path_hex"], exp["path_hex"], "{ctx}");
            }
            "dir" => {
                assert_eq!(kind, "dir", "{ctx}");
                assert_eq!(e["path"], exp["path"], "{ctx}");
            }
            "devnull" => {
                assert_eq!(kind, "device", "{ctx}");
                assert_eq!(e["path"], json!("/dev/null"), "{ctx}");
                assert_eq!(e["device_type"], json!("char"), "{ctx}");
            }
            "fifo" => {
                assert_eq!(kind, "pipe", "{ctx}");
                assert_eq!(e["path"], exp["path"], "{ctx}");
            }
            "pipe_r" | "pipe_w" => {
                assert_eq!(kind, "pipe", "{ctx}");
                assert_eq!(e["inode"], exp["inode"], "{ctx}");
            }
            "tcp_listen" | "tcp6_listen" => {
                assert_eq!(kind, "socket", "{ctx}");
                let proto = if name == "tcp_listen" { "tcp" } else { "tcp6" };
                assert_eq!(e["proto"], json!(proto), "{ctx}");
                assert_eq!(e["local"], exp["local"], "{ctx}");
                assert_eq!(e["state"], json!("LISTEN"), "{ctx}");
                assert_eq!(e["inode"], exp["inode"], "{ctx}");
            }
            "tcp_client" | "tcp_server" => {
                assert_eq!(kind, "socket", "{ctx}");
                assert_eq!(e["proto"], json!("tcp"), "{ctx}");
                assert_eq!(e["local"], exp["local"], "{ctx}");
                assert_eq!(e["remote"], exp["remote"], "{ctx}");
                assert_eq!(e["state"], json!("ESTABLISHED"), "{ctx}");
                assert_eq!(e["inode"], exp["inode"], "{ctx}");
            }
            "udp" => {
                assert_eq!(kind, "socket", "{ctx}");
                assert_eq!(e["proto"], json!("udp"), "{ctx}");
                assert_eq!(e["local"], exp["local"], "{ctx}");
                assert_eq!(e["inode"], exp["inode"], "{ctx}");
            }
            "unix_stream_a" | "unix_stream_b" | "unix_dgram_a" | "unix_dgram_b" => {
                assert_eq!(kind, "socket", "{ctx}");
                assert_eq!(e["proto"], json!("unix"), "{ctx}");
                let ty = if name.starts_with("unix_stream") {
                    "stream"
                } else {
                    "dgram"
                };
                assert_eq!(e["socket_type"], json!(ty), "{ctx}");
                assert_eq!(e["inode"], exp["inode"], "{ctx}");
                assert_eq!(e["peer"], exp["peer"], "{ctx}");
            }
            "unix_path" | "unix_abstract" => {
                assert_eq!(kind, "socket", "{ctx}");
                assert_eq!(e["proto"], json!("unix"), "{ctx}");
                assert_eq!(e["path"], exp["path"], "{ctx}");
                assert_eq!(e["inode"], exp["inode"], "{ctx}");
                if name == "unix_abstract" {
                    let p = e["path"].as_str().unwrap_or_default();
                    assert!(p.starts_with('@') && p.contains(" with spaces"), "{ctx}");
                }
            }
            "eventfd" => {
                assert_eq!(kind, "anon_inode", "{ctx}");
                assert_eq!(e["subtype"], json!("eventfd"), "{ctx}");
                assert_eq!(e["eventfd_count"], json!(7), "{ctx}");
            }
            "epoll" => {
                assert_eq!(kind, "anon_inode", "{ctx}");
                assert_eq!(e["subtype"], json!("eventpoll"), "{ctx}");
                assert_eq!(e["tfd"], exp["tfd"], "{ctx}");
            }
            "timerfd" => {
                assert_eq!(kind, "anon_inode", "{ctx}");
                assert_eq!(e["subtype"], json!("timerfd"), "{ctx}");
                assert_eq!(e["clockid"], json!("monotonic"), "{ctx}");
                assert_eq!(e["interval_secs"].as_f64(), Some(5.0), "{ctx}");
            }
            "signalfd" => {
                assert_eq!(kind, "anon_inode", "{ctx}");
                assert_eq!(e["subtype"], json!("signalfd"), "{ctx}");
                assert_eq!(e["sigmask"], json!(["SIGUSR1", "SIGUSR2"]), "{ctx}");
            }
            "inotify" => {
                assert_eq!(kind, "anon_inode", "{ctx}");
                assert_eq!(e["subtype"], json!("inotify"), "{ctx}");
                assert_eq!(e["watches"], json!(1), "{ctx}");
            }
            "pidfd" => {
                assert_eq!(kind, "anon_inode", "{ctx}");
                assert_eq!(e["subtype"], json!("pidfd"), "{ctx}");
                assert_eq!(e["target_pid"], exp["target_pid"], "{ctx}");
            }
            "memfd" => {
                assert_eq!(kind, "memfd", "{ctx}");
                assert_eq!(e["name"], json!("fdiff-memfd"), "{ctx}");
                assert_eq!(e["size"], json!(1000), "{ctx}");
            }
            other => panic!("the fixture reported a kind this test does not check: {other}"),
        }
        checked += 1;
    }
    assert!(checked >= 27, "only {checked} kinds checked");
}

#[test]
fn issue2_snapshot_json_has_every_top_level_field_and_round_trips() {
    let mut fx = Fixture::new(&[]);
    fx.ok("kinds");
    let snap = snapshot_json(fx.pid);
    assert_eq!(snap["schema"], json!("fdiff/snapshot/v1"));
    assert_eq!(snap["pid"], json!(fx.pid));
    assert_eq!(snap["comm"], json!(FIXTURE_NAME));
    assert!(snap["cmdline"].as_array().is_some_and(|a| {
        a.first()
            .and_then(Value::as_str)
            .is_some_and(|w| w.ends_with(FIXTURE_NAME))
    }));
    assert!(
        snap["start_time"].as_u64().is_some_and(|t| t > 0),
        "{}",
        snap["start_time"]
    );
    assert!(
        snap["taken_at"].as_f64().is_some_and(|t| t > 1.0e9),
        "{}",
        snap["taken_at"]
    );
    let lim = &snap["fd_limit"];
    assert!(
        lim.get("soft").is_some() && lim.get("hard").is_some(),
        "{lim}"
    );
    assert!(snap["errors"].is_array(), "{snap}");
    assert!(snap["fds"].as_array().is_some_and(|a| a.len() >= 27));

    // The JSON is exactly what the library's model reads and writes back.
    let parsed: fdiff::snapshot::Snapshot =
        serde_json::from_value(snap.clone()).expect("parse as fdiff::snapshot::Snapshot");
    assert_eq!(parsed.pid, fx.pid);
    let again = serde_json::to_value(&parsed).expect("serialize");
    assert_eq!(
        again, snap,
        "JSON round trip through fdiff::snapshot::Snapshot"
    );
}

#[test]
fn issue2_snapshot_table_has_one_line_per_fd() {
    let mut fx = Fixture::new(&[]);
    fx.ok("kinds");
    let pid = pid_arg(fx.pid);
    let snap = snapshot_json(fx.pid);
    let fd_numbers: Vec<i64> = by_fd(&snap).keys().copied().collect();
    let o = fdiff(&["snapshot", "--pid", &pid, "--format", "table"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let text = stdout_of(&o);
    let lines: Vec<&str> = text.lines().collect();
    // A summary line and the column header, then one row per fd.
    assert_eq!(
        lines.len(),
        fd_numbers.len() + 2,
        "one line per fd plus two header lines:\n{text}"
    );
    assert!(
        lines[0].starts_with(&format!("pid {pid} ({FIXTURE_NAME}): ")),
        "{}",
        lines[0]
    );
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(header, ["FD", "KIND", "WHAT", "DETAILS"], "{}", lines[1]);
    let rows: Vec<i64> = lines[2..]
        .iter()
        .map(|l| {
            l.split_whitespace()
                .next()
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("a row that does not start with an fd: {l:?}"))
        })
        .collect();
    assert_eq!(
        rows, fd_numbers,
        "rows in fd order, no row broken by a newline"
    );
    // The name with a tab and a newline is shown escaped on its own row.
    let weird = lines
        .iter()
        .find(|l| l.contains("we\"ird"))
        .unwrap_or_else(|| panic!("no row for the weird name:\n{text}"));
    assert!(
        weird.contains("we\"ird\\tname\\nwith newline.txt"),
        "{weird}"
    );
    assert!(!text.contains('\t'), "no raw tab in the table");
}

/// Issue 8 §2: an unnamed client socket is shown, and grouped, by the name its server is bound
/// to, so connections to different servers fall into different groups.
#[test]
fn issue8_unix_client_is_keyed_by_its_peer_path() {
    let mut fx = Fixture::new(&[]);
    let a = fx.ok("unix-clients 3");
    let b = fx.ok("unix-clients 2");
    let snap = snapshot_json(fx.pid);
    let fds = by_fd(&snap);
    for server in [&a, &b] {
        let path = server["path"].as_str().expect("path");
        for c in server["clients"].as_array().expect("clients") {
            let e = fds[&c["fd"].as_i64().expect("fd")];
            assert_eq!(e["proto"], json!("unix"), "{e}");
            assert!(
                e.get("path").is_none(),
                "a client has no name of its own: {e}"
            );
            assert_eq!(e["peer_path"], json!(path), "{e}");
        }
        for s in server["accepted"].as_array().expect("accepted") {
            let e = fds[&s["fd"].as_i64().expect("fd")];
            assert_eq!(
                e["path"],
                json!(path),
                "an accepted socket has the listener's name: {e}"
            );
            assert!(e.get("peer_path").is_none(), "{e}");
        }
    }
    let table = stdout_of(&fdiff(&["snapshot", "--pid", &pid_arg(fx.pid)]));
    let a_path = a["path"].as_str().expect("path");
    assert!(
        table.contains(&format!("unix stream -> {a_path}")),
        "the table names the server: {table}"
    );

    // Grouped by server: a watch that sees 4 more clients of the first server counts them in
    // `unix stream -> …5432`, apart from the second server's.
    let child = spawn_fdiff(&[
        "--pid",
        &pid_arg(fx.pid),
        "--interval",
        "200ms",
        "--duration",
        "2s",
        "--format",
        "json",
        "--quiet",
    ]);
    std::thread::sleep(Duration::from_millis(700));
    let c = fx.ok("unix-clients 4");
    let o = finish(child, RUN_LIMIT);
    let report = json_out(&o);
    // The key names the server exactly; only the fixture's random work dir is starred.
    let client_group = |path: &str| {
        let name = path.rsplit('/').next().expect("file name");
        let found: Vec<&Value> = groups_of(&report, fx.pid)
            .into_iter()
            .filter(|g| {
                let k = g["key"].as_str().unwrap_or_default();
                k.starts_with("unix stream -> /") && k.ends_with(&format!("/{name}"))
            })
            .collect();
        assert_eq!(found.len(), 1, "{name}: {}", keys(&report));
        found[0]
    };
    let g = client_group(c["path"].as_str().expect("path"));
    assert_eq!(g["opened"], json!(4), "{}", keys(&report));
    let g = client_group(a_path);
    assert_eq!(g["opened"], json!(0), "{}", keys(&report));
}

/// The fixture's answer to a command that needs root (unshare), or `None` after saying why the
/// test is skipped.
fn netns_set(fx: &mut Fixture, command: &str) -> Option<Value> {
    let v = fx.send(command);
    if v["ok"] == json!(true) {
        return Some(v);
    }
    eprintln!("skipped: `{command}` needs CAP_SYS_ADMIN (unshare of a network namespace): {v}");
    None
}

/// Every socket of `set` (from the fixture's `unix_set`) decoded exactly: the pair with its
/// peers, the listener with its exact name, the client with the listener's name as its peer's,
/// and the forged row's name on no other socket.
fn assert_unix_set_exact(snap: &Value, set: &Value) {
    let fds = by_fd(snap);
    let at = |v: &Value| fds[&v["fd"].as_i64().expect("fd")];
    let path = set["path"].as_str().expect("path");
    for end in set["pair"].as_array().expect("pair") {
        let e = at(end);
        assert_eq!(e["proto"], json!("unix"), "{e}");
        assert_eq!(e["socket_type"], json!("stream"), "{e}");
        assert_eq!(e["state"], json!("ESTABLISHED"), "{e}");
        assert_eq!(e["inode"], end["inode"], "{e}");
        assert_eq!(e["peer"], end["peer"], "peers are known: {e}");
        assert!(e.get("path").is_none(), "a socketpair end has no name: {e}");
    }
    let l = at(&set["listener"]);
    assert_eq!(
        l["path"],
        json!(path),
        "the exact name, newline and all: {l}"
    );
    assert_eq!(l["state"], json!("LISTEN"), "{l}");
    let c = at(&set["client"]);
    assert_eq!(c["peer_path"], json!(path), "{c}");
    assert_eq!(c["peer"], at(&set["server"])["inode"], "{c}");
    for e in snap["fds"].as_array().expect("fds") {
        let shown = e["path"].as_str().unwrap_or_default();
        assert!(
            !shown.starts_with("@SPOOFED"),
            "the forged row is never believed: {e}"
        );
    }
}

/// Issue 9 #15: a process in another network namespace holding a unix socket whose name holds
/// a newline and a forged row: asked of sock_diag inside that namespace, every socket is exact,
/// with peers, and the forgery names nothing.
#[test]
fn issue9_15_sockets_of_another_netns_are_decoded_exactly_and_cannot_be_forged() {
    let mut fx = Fixture::new(&[]);
    let Some(set) = netns_set(&mut fx, "netns-spoof") else {
        return;
    };
    let snap = snapshot_json(fx.pid);
    assert_unix_set_exact(&snap, &set);
    let table = stdout_of(&fdiff(&["snapshot", "--pid", &pid_arg(fx.pid)]));
    assert!(!table.contains("unix stream @SPOOFED"), "{table}");
}

/// Issue 9 #15: sockets created in a namespace other than their process's (a thread that moved,
/// or an fd passed on) are asked in their own namespace, which SIOCGSKNS names.
#[test]
fn issue9_15_a_socket_of_another_netns_than_its_process_is_asked_there() {
    let mut fx = Fixture::new(&[]);
    let Some(set) = netns_set(&mut fx, "netns-thread") else {
        return;
    };
    let snap = snapshot_json(fx.pid);
    assert_unix_set_exact(&snap, &set);
}

/// A PostgreSQL server of our own (initdb in a temp dir, unix socket only), run as the
/// `postgres` user; stopped (fast shutdown) and removed on drop.
struct Postgres {
    server: std::process::Child,
    dir: std::path::PathBuf,
    socket_dir: String,
    port: u16,
}

impl Postgres {
    /// `None`, after saying why, when PostgreSQL, the `postgres` user or root is missing.
    fn start() -> Option<Postgres> {
        use std::os::unix::fs::chown;
        let skip = |why: &str| {
            eprintln!("skipped: no real PostgreSQL to test against: {why}");
            None
        };
        if !rustix_is_root() {
            return skip("not root (the server must run as the postgres user)");
        }
        let bin = [
            "/usr/local/bin",
            "/usr/lib/postgresql/15/bin",
            "/usr/lib/postgresql/16/bin",
        ]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|d| d.join("postgres").exists() && d.join("initdb").exists());
        let Some(bin) = bin else {
            return skip("no postgres/initdb binaries");
        };
        let Some((uid, gid)) = user_ids("postgres") else {
            return skip("no postgres user");
        };
        let dir = std::env::temp_dir().join(format!("fdiff-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock")).expect("create pg dir");
        for d in [dir.clone(), dir.join("sock")] {
            chown(&d, Some(uid), Some(gid)).expect("chown pg dir");
        }
        let as_postgres = |prog: &std::path::Path| {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
                .arg(prog)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            c
        };
        let data = dir.join("data");
        let ok = as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir_all(&dir);
            return skip("initdb failed");
        }
        let port = 40000 + (std::process::id() % 20000) as u16;
        let socket_dir = dir.join("sock").to_string_lossy().into_owned();
        let server = as_postgres(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-k",
                &socket_dir,
                "-c",
                "listen_addresses=",
            ])
            .spawn()
            .expect("spawn postgres");
        let pg = Postgres {
            server,
            dir,
            socket_dir,
            port,
        };
        let sock = format!("{}/.s.PGSQL.{port}", pg.socket_dir);
        if !wait_for(Duration::from_secs(20), || {
            std::path::Path::new(&sock).exists()
        }) {
            return skip("the server did not come up");
        }
        Some(pg)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown.
        signal(self.server.id() as i32, 2);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.server.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.split(':').next() == Some(name))?;
    let f: Vec<&str> = line.split(':').collect();
    Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
}

/// Issue 8 §2 on real software: psycopg2 connections over PostgreSQL's unix socket are shown
/// with the server's socket as `peer_path` and grouped as `unix stream -> …/.s.PGSQL.PORT`.
#[test]
fn issue8_psycopg2_connections_are_keyed_by_the_postgres_socket() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let script = format!(
        "import sys, psycopg2\n\
         conns = [psycopg2.connect(host={dir:?}, port={port}, user='postgres', dbname='postgres') for _ in range(3)]\n\
         print('ready', flush=True)\n\
         sys.stdin.read()\n",
        dir = pg.socket_dir,
        port = pg.port
    );
    let child = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipped: no python3");
        return;
    };
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let _ = std::io::BufRead::read_line(&mut out, &mut line);
    if line.trim() != "ready" {
        let _ = child.kill();
        let o = child.wait_with_output().expect("wait");
        eprintln!(
            "skipped: psycopg2 could not connect: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        return;
    }
    let pid = child.id() as i32;
    let sock = format!("{}/.s.PGSQL.{}", pg.socket_dir, pg.port);
    let snap = snapshot_json(pid);
    let conns: Vec<&Value> = snap["fds"]
        .as_array()
        .expect("fds")
        .iter()
        .filter(|e| e["peer_path"] == json!(sock))
        .collect();
    assert_eq!(conns.len(), 3, "three connections to {sock}: {snap}");
    let report = fdiff_json(&[
        "--pid",
        &pid_arg(pid),
        "--interval",
        "200ms",
        "--duration",
        "600ms",
        "--format",
        "json",
        "--quiet",
    ]);
    let name = format!("/.s.PGSQL.{}", pg.port);
    let g: Vec<&Value> = groups_of(&report, pid)
        .into_iter()
        .filter(|g| {
            let k = g["key"].as_str().unwrap_or_default();
            k.starts_with("unix stream -> /") && k.ends_with(&name)
        })
        .collect();
    assert_eq!(g.len(), 1, "{}", keys(&report));
    drop(child.stdin.take());
    let _ = child.wait();
}

/// Issue 9 #15, the hostile case itself: a container (an unprivileged user and network
/// namespace) forges a /proc/net/unix row through a newline in a socket name, and fdiff runs
/// as the same unprivileged user, so it may not join the namespace and must read /proc. The
/// forged row is never believed; the forger's own name is cut at its newline at most.
#[test]
fn issue9_15_proc_fallback_in_a_container_is_not_fooled_by_a_forged_row() {
    const NOBODY: [&str; 4] = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let mut probe = std::process::Command::new(NOBODY[0]);
    probe
        .args(&NOBODY[1..])
        .args(["unshare", "-rn", FDIFF, "--version"]);
    let usable = probe
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        eprintln!(
            "skipped: needs root to run as nobody, unprivileged user namespaces, and the fdiff \
             binary reachable by nobody"
        );
        return;
    }
    let mut wrapper = NOBODY.to_vec();
    wrapper.extend(["unshare", "-rn"]);
    let mut fx = Fixture::wrapped(&wrapper);
    let set = fx.ok("netns-spoof");
    let mut cmd = std::process::Command::new(NOBODY[0]);
    cmd.args(&NOBODY[1..])
        .args([
            FDIFF,
            "snapshot",
            "--pid",
            &pid_arg(fx.pid),
            "--format",
            "json",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let o = finish(cmd.spawn().expect("spawn fdiff as nobody"), RUN_LIMIT);
    let snap = json_out(&o);
    let fds = by_fd(&snap);
    let at = |v: &Value| fds[&v["fd"].as_i64().expect("fd")];
    for end in set["pair"].as_array().expect("pair") {
        let e = at(end);
        assert_ne!(e["path"], json!("@SPOOFED"), "{e}");
        assert_ne!(e["state"], json!("LISTEN"), "{e}");
        if e["proto"] == json!("unix") {
            assert!(e.get("path").is_none(), "{e}");
            assert_eq!(e["state"], json!("ESTABLISHED"), "{e}");
        }
    }
    let l = at(&set["listener"]);
    let path = set["path"].as_str().expect("path");
    let cut = &path[..path.find('\n').expect("a newline in the name")];
    assert_eq!(l["path"], json!(cut), "cut at the newline: {l}");
}
