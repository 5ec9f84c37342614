//! Issue 12, Python frames: `fdiff run --stacks=now` over a CPython 3.11 script whose
//! `leaky()` keeps the files it opens and whose `fine()` closes them names `leaky` and its
//! line in the leaking group's top stack, and the opening thread's Python stack when a thread
//! opens them. Skips (with a message) where python3 is not CPython 3.11.

use super::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fdiff-stacks/testdata/pyleak.py"
);

/// The real CPython 3.11 executable behind `python3` (past pyenv's shims), or None.
fn python311() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; print(sys.executable if sys.version_info[:2] == (3, 11) else '')",
        ])
        .output()
        .ok()?;
    let exe = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if exe.is_empty() {
        eprintln!("skipped: python3 is not CPython 3.11 (Python frames are read for 3.11 only)");
        return None;
    }
    Some(PathBuf::from(exe))
}

/// The line of the script that holds `needle`.
fn line_of(needle: &str) -> u64 {
    let text = std::fs::read_to_string(SCRIPT).expect("script");
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u64 + 1)
        .expect("needle in script")
}

/// `fdiff run --stacks=now -f json -- py12-MODE-PID pyleak.py FILE 3 MODE`: the report. The
/// interpreter runs through a symlink named for this test, so no other process matches it.
fn run(mode: &str) -> Option<(Value, tempfile::TempDir)> {
    let py = python311()?;
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir
        .path()
        .join(format!("py12-{mode}-{}", std::process::id()));
    std::os::unix::fs::symlink(&py, &exe).expect("symlink");
    let file = dir.path().join("data");
    std::fs::write(&file, b"x").expect("write");
    let out = dir.path().join("report.json");
    let o = fdiff(&[
        "run",
        "--stacks=now",
        "-i",
        "200ms",
        "-q",
        "-f",
        "json",
        "-o",
        out.to_str().expect("utf-8"),
        "--",
        exe.to_str().expect("utf-8"),
        SCRIPT,
        file.to_str().expect("utf-8"),
        "3",
        mode,
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let text = std::fs::read_to_string(&out).expect("report");
    Some((serde_json::from_str(&text).expect("json"), dir))
}

fn leaking_files(r: &Value) -> &Value {
    r["stacks"]["groups"]
        .as_array()
        .expect("stacks.groups")
        .iter()
        .find(|g| g["kind"] == "file" && g["survivors"].as_u64() > Some(10))
        .unwrap_or_else(|| panic!("no leaking file group in {:#}", r["stacks"]))
}

fn python_frames(stack: &Value) -> Vec<&Value> {
    stack["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .filter(|f| f["python"] == true)
        .collect()
}

fn names(frames: &[&Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["function"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The top stack's innermost Python frame is `leaky` at its open's line, `fine` is nowhere in
/// it, and `fine`'s stack shows among those closed again.
fn check_leaky(g: &Value) -> Vec<String> {
    let top = &g["survivor_stacks"][0];
    let py = python_frames(top);
    let n = names(&py);
    assert_eq!(
        n.first().map(String::as_str),
        Some("leaky"),
        "top stack {n:?}"
    );
    assert!(!n.iter().any(|f| f == "fine"), "top stack {n:?}");
    assert!(
        py[0]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("pyleak.py")),
        "{}",
        py[0]
    );
    assert_eq!(
        py[0]["line"].as_u64(),
        Some(line_of("fh.append(open(p))")),
        "{}",
        py[0]
    );
    // The caller's frame names the line that called leaky().
    assert_eq!(
        n.get(1).map(String::as_str),
        Some("loop"),
        "top stack {n:?}"
    );
    assert_eq!(py[1]["line"].as_u64(), Some(line_of("        leaky()")));
    let closed = g["closed_stacks"].as_array().expect("closed_stacks");
    assert!(
        closed
            .iter()
            .any(|s| names(&python_frames(s)).first().map(String::as_str) == Some("fine")),
        "closed stacks {closed:?}"
    );
    n
}

#[test]
fn issue12_python_leaky_is_the_top_stack_with_its_line() {
    let Some((r, _dir)) = run("main") else {
        return;
    };
    let g = leaking_files(&r);
    let n = check_leaky(g);
    assert_eq!(n.last().map(String::as_str), Some("<module>"), "{n:?}");
    assert_eq!(g["captured"], g["survivors"], "{g}");
}

#[test]
fn issue12_python_thread_s_open_is_the_opening_thread_s_stack() {
    let Some((r, _dir)) = run("thread") else {
        return;
    };
    let g = leaking_files(&r);
    let n = check_leaky(g);
    // The thread's own frames, not the main thread's (waiting in join() under <module>).
    assert!(n.iter().any(|f| f == "Thread.run"), "{n:?}");
    assert!(!n.iter().any(|f| f == "<module>"), "{n:?}");
    let pid = g["pid"].as_i64();
    let tids = g["survivor_stacks"][0]["tids"].as_array().expect("tids");
    assert!(
        !tids.is_empty() && tids.iter().all(|t| t.as_i64() != pid),
        "tids {tids:?}"
    );
}

/// The table shows the Python frames and leaves CPython's own native frames out.
#[test]
fn issue12_python_table_shows_python_frames() {
    let Some(py) = python311() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let exe: &Path = &dir
        .path()
        .join(format!("py12-table-{}", std::process::id()));
    std::os::unix::fs::symlink(&py, exe).expect("symlink");
    let file = dir.path().join("data");
    std::fs::write(&file, b"x").expect("write");
    let o = fdiff(&[
        "run",
        "--stacks=now",
        "-i",
        "200ms",
        "-q",
        "--",
        exe.to_str().expect("utf-8"),
        SCRIPT,
        file.to_str().expect("utf-8"),
        "2",
        "main",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let text = format!("{}{}", stdout_of(&o), stderr_of(&o));
    let want = format!(
        "leaky at {SCRIPT}:{} [python]",
        line_of("fh.append(open(p))")
    );
    assert!(text.contains(&want), "{want} not in {text}");
    assert!(!text.contains("_PyEval_EvalFrameDefault"), "{text}");
    assert!(
        text.contains("CPython interpreter frames left out"),
        "{text}"
    );
}

/// The venv with gunicorn and pypdfium2 (.ci/run makes it), or None with a message.
fn gunicorn_venv() -> Option<PathBuf> {
    let venv = std::env::var_os("FDIFF_GUNICORN_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv-stacks"));
    let ok = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import sys, gunicorn, pypdfium2; sys.exit(sys.version_info[:2] != (3, 11))",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "skipped: no CPython 3.11 venv with gunicorn and pypdfium2 at {} (.ci/run makes it)",
            venv.display()
        );
        return None;
    }
    Some(venv)
}

/// One HTTP/1.0 GET; true when the server answered.
fn get(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
}

/// The seed's case: gunicorn's gthread worker (forked by the master, requests on pool
/// threads) leaks the PDFs its /upload handler opens with pypdfium2; /pages closes them. The
/// leaking group's top stack names the handler `render_upload` at its line, not `count_pages`.
#[test]
fn issue12_python_gunicorn_gthread_pdf_leak_names_the_handler() {
    let Some(venv) = gunicorn_venv() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let out = dir.path().join("report.json");
    let testdata = Path::new(SCRIPT).parent().expect("testdata");
    let bind = format!("127.0.0.1:{port}");
    let gunicorn = venv.join("bin/gunicorn");
    let python = venv.join("bin/python");
    let child = fdiff_cmd(&[
        "run",
        "--stacks=now",
        "-i",
        "200ms",
        "-q",
        "-f",
        "json",
        "-o",
        out.to_str().expect("utf-8"),
        "--",
        python.to_str().expect("utf-8"),
        gunicorn.to_str().expect("utf-8"),
        "-k",
        "gthread",
        "--threads",
        "4",
        "-w",
        "1",
        "-b",
        &bind,
        "--no-control-socket",
        "--chdir",
        testdata.to_str().expect("utf-8"),
        "pdfapp:app",
    ])
    .env("PDF12", dir.path().join("upload-12.pdf"))
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn fdiff");
    // Startup is slow with every open of the imports traced.
    let up = wait_for(std::time::Duration::from_secs(30), || get(port, "/pages"));
    let (mut served, mut sent) = (0, 0);
    if up {
        // A steady client for 6 s (the leak verdict needs a trend over several ticks, and the
        // worker is slow when the machine is busy).
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(6) {
            served += usize::from(get(port, "/upload"));
            served += usize::from(get(port, "/pages"));
            sent += 2;
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        // Two ticks more, so the last look sees every leaked file.
        std::thread::sleep(std::time::Duration::from_millis(600));
    }
    // A user's Ctrl-C: fdiff ends the watch, attributes the survivors while the worker still
    // holds them, then forwards the signal to gunicorn and reports once it has exited (a
    // kill of the worker instead would show its fds gone in a last look at the dying process).
    signal(child.id() as i32, libc::SIGTERM);
    let o = finish(child, RUN_LIMIT);
    assert!(
        up && served == sent,
        "gunicorn served {served} of {sent}: {}",
        show(&o)
    );
    let text = std::fs::read_to_string(&out).unwrap_or_else(|_| panic!("no report: {}", show(&o)));
    let r: Value = serde_json::from_str(&text).expect("json");
    let g = r["stacks"]["groups"]
        .as_array()
        .expect("stacks.groups")
        .iter()
        .find(|g| g["kind"] == "file" && g["key"].as_str().is_some_and(|k| k.ends_with(".pdf")))
        .unwrap_or_else(|| {
            let pdf: Vec<&Value> = r["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|g| g["key"].as_str().is_some_and(|k| k.ends_with(".pdf")))
                .collect();
            panic!(
                "no leaking pdf group in {:#} (served {served}; pdf groups {pdf:?})",
                r["stacks"]
            )
        });
    let top = &g["survivor_stacks"][0];
    assert!(top.is_object(), "no survivor stack: {g:#}");
    let py = python_frames(top);
    let n = names(&py);
    let handler = py
        .iter()
        .find(|f| f["function"] == "render_upload")
        .unwrap_or_else(|| panic!("top stack {n:?}"));
    assert!(
        handler["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("pdfapp.py")),
        "{handler}"
    );
    let want = std::fs::read_to_string(testdata.join("pdfapp.py"))
        .expect("app")
        .lines()
        .position(|l| l.contains("pdf = pdfium.PdfDocument(path)"))
        .map(|i| i as u64 + 1);
    assert_eq!(handler["line"].as_u64(), want, "{handler}");
    assert!(!n.iter().any(|f| f == "count_pages"), "top stack {n:?}");
    // On a pool thread of the worker, not the worker's main thread (its event loop).
    assert!(
        n.iter().any(|f| f == "ThreadWorker.handle"),
        "top stack {n:?}"
    );
    assert!(
        !n.iter().any(|f| f.contains("wait_for_and_dispatch")),
        "{n:?}"
    );
    // The native frames of the open are there too: pdfium's, under ctypes.
    let native: Vec<&str> = top["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .filter_map(|f| f["function"].as_str())
        .collect();
    assert!(native.contains(&"FPDF_LoadDocument"), "{native:?}");
}
