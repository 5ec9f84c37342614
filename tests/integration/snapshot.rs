//! Issue 2: `fdiff snapshot` decodes every kind of fd exactly, in JSON and in the table.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

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
    assert_eq!(snap["comm"], json!("fdiff"));
    assert!(
        snap["cmdline"]
            .as_array()
            .is_some_and(|a| a.iter().any(|w| w == "__fixture"))
    );
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
        lines[0].starts_with(&format!("pid {pid} (fdiff): ")),
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
    std::thread::sleep(std::time::Duration::from_millis(700));
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
