//! Issue 13: `fdiff serve` as a Prometheus exporter, scraped by a real Prometheus, over a
//! leaking fixture and a healthy one; the shipped rules checked by promtool; bad input.

use crate::common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONTRIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib");

/// A running `fdiff serve` on a free loopback port (the port it prints), killed on drop.
struct Serve {
    child: Child,
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Serve {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut child = fdiff_cmd(&all)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fdiff serve");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("first line");
    // Keep draining stderr so fdiff never blocks on it.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = err.read_to_end(&mut sink);
    });
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Serve { child, addr }
}

/// One HTTP request, raw; (status line, body).
fn http(addr: &str, request: &str) -> (String, String) {
    // Refused (not up yet): an empty status, which the callers poll past.
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (String::new(), String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let _ = s.write_all(request.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

fn get(addr: &str, path: &str) -> (String, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n"),
    )
}

/// Poll until `f` holds or `limit` passes; the last value either way.
fn until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn sample_lines<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .collect()
}

/// The value of one sample line.
fn value(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

#[test]
fn issue13_serve_exposes_the_leaking_group_and_passes_promtool() {
    let mut leaky = Fixture::new(&["leak-file 20"]);
    let mut healthy = Fixture::new(&[]);
    let (lp, hp) = (leaky.pid.to_string(), healthy.pid.to_string());
    let s = serve(&["--pid", &lp, "--pid", &hp, "--interval", "250ms"]);
    let leaking = format!("pid=\"{lp}\"");
    let text = until(Duration::from_secs(60), || {
        let (st, body) = get(&s.addr, "/metrics");
        (st.contains("200")
            && sample_lines(&body, "fdiff_group_leaking")
                .iter()
                .any(|l| l.contains(&leaking) && value(l) == 1.0))
        .then_some(body)
    })
    .unwrap_or_else(|| panic!("no leaking group: {}", get(&s.addr, "/metrics").1));
    for l in sample_lines(&text, "fdiff_group_leaking") {
        if value(l) == 1.0 {
            assert!(l.contains(&leaking), "only the leaky fixture leaks: {l}");
        }
    }
    let healthy_label = format!("pid=\"{hp}\"");
    assert!(
        sample_lines(&text, "fdiff_process_open_fds")
            .iter()
            .any(|l| l.contains(&healthy_label)),
        "{text}"
    );
    for name in [
        "fdiff_process_fd_limit_soft",
        "fdiff_process_fd_usage_ratio",
        "fdiff_process_deep",
        "fdiff_process_open_fds_by_kind",
        "fdiff_fds_opened_total",
        "fdiff_build_info",
        "fdiff_scan_duration_seconds_count",
    ] {
        assert!(
            !sample_lines(&text, name).is_empty(),
            "{name} missing:\n{text}"
        );
    }
    // OpenMetrics when asked for by Accept.
    let (st, om) = http(
        &s.addr,
        "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
    );
    assert!(st.contains("200") && om.ends_with("# EOF\n"), "{st}\n{om}");
    // The report says which processes are deep and why.
    let (_, report) = get(&s.addr, "/report");
    let r: Value = serde_json::from_str(&report).expect("report is JSON");
    assert_eq!(r["schema"], "fdiff/report/v1");
    assert!(
        r["serve"]["deep"].as_array().is_some_and(|d| d
            .iter()
            .any(|p| p["pid"].as_i64() == Some(leaky.pid as i64)
                && p["reason"].as_str().is_some_and(|r| r.contains("named")))),
        "{}",
        r["serve"]
    );
    assert!(get(&s.addr, "/healthz").0.contains("200"));
    if let Some(promtool) = which("promtool") {
        let mut c = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .ok();
        let out = c.wait_with_output().expect("promtool");
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("promtool not installed: skipping promtool check metrics");
    }
    leaky.close_stdin();
    healthy.close_stdin();
}

#[test]
fn issue13_shipped_rules_pass_promtool_check_and_unit_tests() {
    let Some(promtool) = which("promtool") else {
        eprintln!("promtool not installed (Debian package prometheus): skipping");
        return;
    };
    let rules = Path::new(CONTRIB).join("fdiff-rules.yml");
    let out = Command::new(&promtool)
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&promtool)
        .args(["test", "rules", "fdiff-rules-test.yml"])
        .current_dir(CONTRIB)
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn prom_query(prom: &str, q: &str) -> Option<Value> {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (st, body) = get(prom, &format!("/api/v1/query?query={enc}"));
    if !st.contains("200") {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"]
        .as_array()
        .map(|a| Value::Array(a.clone()))
}

#[test]
fn issue13_real_prometheus_scrapes_serve_and_the_leak_alert_goes_pending() {
    let Some(prometheus) = which("prometheus") else {
        eprintln!("prometheus not installed (Debian package prometheus): skipping");
        return;
    };
    let mut leaky = Fixture::new(&["leak-file 20"]);
    let mut healthy = Fixture::new(&[]);
    let (lp, hp) = (leaky.pid.to_string(), healthy.pid.to_string());
    let s = serve(&["--pid", &lp, "--pid", &hp, "--interval", "250ms"]);
    let dir = tempfile::tempdir().expect("tempdir");
    // The shipped rules, with the leak alert's 10 minutes cut to 30 s so that it is pending
    // within the test (and fires after 30 s).
    let rules = std::fs::read_to_string(Path::new(CONTRIB).join("fdiff-rules.yml"))
        .expect("rules")
        .replace("for: 10m", "for: 30s");
    std::fs::write(dir.path().join("rules.yml"), rules).expect("write rules");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\n\
             scrape_configs:\n  - job_name: fdiff\n    static_configs:\n      - targets: ['{}']\n",
            s.addr
        ),
    )
    .expect("write config");
    let port = free_port();
    let prom_addr = format!("127.0.0.1:{port}");
    let mut prom = Command::new(prometheus)
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let leaking = until(Duration::from_secs(90), || {
        let r = prom_query(&prom_addr, "fdiff_group_leaking == 1")?;
        (!r.as_array()?.is_empty()).then_some(r)
    });
    let alert = until(Duration::from_secs(60), || {
        let r = prom_query(&prom_addr, "ALERTS{alertname=\"FdiffFdLeak\"}")?;
        r.as_array()?
            .iter()
            .find(|a| a["metric"]["pid"] == lp.as_str())
            .cloned()
    });
    let healthy_up = prom_query(
        &prom_addr,
        &format!("fdiff_process_open_fds{{pid=\"{hp}\"}}"),
    );
    let healthy_leaks = prom_query(
        &prom_addr,
        &format!("fdiff_group_leaking{{pid=\"{hp}\"}} == 1"),
    );
    // Every query of the shipped dashboard is valid PromQL and finds data here.
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(CONTRIB).join("grafana-fdiff.json")).expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut dead = Vec::new();
    for panel in dash["panels"].as_array().into_iter().flatten() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let q = t["expr"]
                .as_str()
                .unwrap_or("")
                .replace("$instance", ".*")
                .replace("$comm", ".*");
            match prom_query(&prom_addr, &q) {
                Some(_) => {}
                None => dead.push(q),
            }
        }
    }
    let _ = prom.kill();
    let _ = prom.wait();
    leaky.close_stdin();
    healthy.close_stdin();
    assert!(
        dead.is_empty(),
        "dashboard queries Prometheus refused: {dead:?}"
    );
    let leaking = leaking.expect("Prometheus saw a leaking group");
    for series in leaking.as_array().into_iter().flatten() {
        assert_eq!(
            series["metric"]["pid"],
            lp.as_str(),
            "only the leaky fixture: {series}"
        );
    }
    let alert = alert.expect("the FdiffFdLeak alert is pending or firing");
    let state = alert["metric"]["alertstate"].as_str().unwrap_or("");
    assert!(state == "pending" || state == "firing", "{alert}");
    assert!(
        healthy_up.is_some_and(|r| r.as_array().is_some_and(|a| !a.is_empty())),
        "the healthy fixture is scraped too"
    );
    assert!(
        healthy_leaks.is_some_and(|r| r.as_array().is_some_and(|a| a.is_empty())),
        "the healthy fixture never leaks"
    );
}

#[test]
fn issue13_all_counts_the_host_and_digs_into_what_grows() {
    let mut leaky = Fixture::new(&["leak-file 20"]);
    let lp = leaky.pid.to_string();
    let s = serve(&["--all", "--interval", "250ms", "--max-deep", "200"]);
    let label = format!("pid=\"{lp}\"");
    let deep = until(Duration::from_secs(60), || {
        let (_, body) = get(&s.addr, "/metrics");
        sample_lines(&body, "fdiff_process_deep")
            .iter()
            .any(|l| l.contains(&label) && value(l) == 1.0)
            .then_some(body)
    });
    let (_, report) = get(&s.addr, "/report");
    leaky.close_stdin();
    let text = deep.expect("the growing fixture went deep");
    let r: Value = serde_json::from_str(&report).expect("JSON");
    let d = r["serve"]["deep"]
        .as_array()
        .and_then(|d| {
            d.iter()
                .find(|p| p["pid"].as_i64() == Some(leaky.pid as i64))
                .cloned()
        })
        .unwrap_or_default();
    assert!(
        d["reason"]
            .as_str()
            .is_some_and(|r| r.contains("grows steadily")),
        "{d}"
    );
    // Every readable process appears; this test's own process is readable.
    let me = format!("pid=\"{}\"", std::process::id());
    assert!(
        sample_lines(&text, "fdiff_process_open_fds")
            .iter()
            .any(|l| l.contains(&me)),
        "this test process is counted"
    );
    let unreadable = sample_lines(&text, "fdiff_processes_unreadable");
    assert_eq!(unreadable.len(), 1, "{text}");
    assert!(
        r["serve"]["processes_counted"]
            .as_u64()
            .is_some_and(|n| n > 2)
    );
}

/// A process read in depth because it grew goes back to being counted once it has been quiet
/// for --demote-after: --max-deep is not filled for good by what grew once.
#[test]
fn issue13_deep_process_that_stopped_growing_goes_back_to_counting() {
    // Grows to 80 files at 20/s, then holds them: promoted while it grows, quiet after.
    let mut pool = Fixture::new(&["hold-files 80 20"]);
    let label = format!("pid=\"{}\"", pool.pid);
    let s = serve(&[
        "--all",
        "--interval",
        "250ms",
        "--max-deep",
        "200",
        "--demote-after",
        "2s",
    ]);
    let deep_value = |body: &str| {
        sample_lines(body, "fdiff_process_deep")
            .iter()
            .find(|l| l.contains(&label))
            .map(|l| value(l))
    };
    let went_deep = until(Duration::from_secs(60), || {
        let (_, body) = get(&s.addr, "/metrics");
        (deep_value(&body) == Some(1.0)).then_some(())
    });
    assert!(went_deep.is_some(), "the growing fixture never went deep");
    let back = until(Duration::from_secs(60), || {
        let (_, body) = get(&s.addr, "/metrics");
        let (_, report) = get(&s.addr, "/report");
        let r: Value = serde_json::from_str(&report).ok()?;
        let still = r["serve"]["deep"]
            .as_array()?
            .iter()
            .any(|p| p["pid"].as_i64() == Some(pool.pid as i64));
        let tracked = r["processes"]
            .as_array()?
            .iter()
            .any(|p| p["pid"].as_i64() == Some(pool.pid as i64));
        (deep_value(&body) == Some(0.0) && !still && !tracked).then_some(r)
    });
    pool.close_stdin();
    let r = back.expect("the quiet fixture was never demoted");
    assert!(
        r["serve"]["demoted"].as_u64().is_some_and(|n| n >= 1),
        "{}",
        r["serve"]
    );
}

#[test]
fn issue13_bad_input_is_one_line_and_the_watch_keeps_its_pace() {
    // Not loopback without the flag: usage error.
    let out = fdiff(&["serve", "--all", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("'0.0.0.0:0'") && err.contains("--allow-remote"),
        "{err}"
    );
    // A port in use: one line, exit 1.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").to_string();
    let out = fdiff(&["serve", "--all", "--listen", &port]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("already in use"), "{err}");
    drop(taken);

    let mut fx = Fixture::new(&[]);
    let fp = fx.pid.to_string();
    let s = serve(&[
        "--pid",
        &fp,
        "--interval",
        "100ms",
        "--max-connections",
        "16",
    ]);
    until(Duration::from_secs(20), || {
        get(&s.addr, "/healthz").0.contains("200").then_some(())
    })
    .expect("up");
    // Malformed requests: one line each.
    for bad in [
        "garbage\r\n\r\n",
        "GET\r\n\r\n",
        "POST /metrics HTTP/1.1\r\n\r\n",
        "GET /x HTTP/1.1\r\n\r\n",
    ] {
        let (st, body) = http(&s.addr, bad);
        assert!(st.contains(" 4"), "{bad:?}: {st}");
        assert_eq!(body.trim_end().lines().count(), 1, "{body}");
    }
    let head = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert!(http(&s.addr, &head).0.contains("431"));
    let ticks = |a: &str| -> u64 {
        get(a, "/healthz")
            .1
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let before = ticks(&s.addr);
    // 1,000 connections at once that send nothing, and clients that never read.
    let mut idle = Vec::new();
    for _ in 0..1000 {
        if let Ok(c) = TcpStream::connect(&s.addr) {
            idle.push(c);
        }
    }
    for _ in 0..8 {
        if let Ok(mut c) = TcpStream::connect(&s.addr) {
            let _ = c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
            idle.push(c);
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    // The watch went on meanwhile (the board is read by a fresh client once the idle ones
    // time out or are refused).
    let after = until(Duration::from_secs(30), || {
        let (st, body) = get(&s.addr, "/healthz");
        st.contains("200").then_some(body)
    });
    drop(idle);
    let after = after
        .and_then(|b| {
            b.split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap_or(0);
    assert!(after > before + 5, "ticks went on: {before} -> {after}");
    fx.close_stdin();
}
