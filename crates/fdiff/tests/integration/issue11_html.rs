//! Issue 11 part 2: `--html` and `--svg` of a real fixture leak; the page of a live watch and
//! of `fdiff report` on its recording carry the same data; the page rendered by headless
//! Chromium (non-blank chart, the leak's key in the DOM, no script error).

use crate::common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The JSON embedded in a page's `<script type="application/json" id=ID>`.
fn embedded(html: &str, id: &str) -> Value {
    let open = format!("<script type=\"application/json\" id=\"{id}\">");
    let start = html
        .find(&open)
        .unwrap_or_else(|| panic!("no #{id} in the page"))
        + open.len();
    let end = start + html[start..].find("</script>").expect("end of script");
    serde_json::from_str(&html[start..end]).unwrap_or_else(|e| panic!("#{id}: {e}"))
}

/// Watch a fixture that leaks files (and churns others) for 3 s, with a recording, the page
/// and the chart; returns the fixture (kept alive), the live JSON report and the files.
fn watch_leak(dir: &Path) -> (Fixture, Value, PathBuf, PathBuf, PathBuf) {
    let fx = Fixture::new(&["leak-file 10", "churn 10 10"]);
    let (rec, html, svg) = (
        dir.join("rec.jsonl"),
        dir.join("live.html"),
        dir.join("live.svg"),
    );
    let live = fdiff_json(&[
        "--pid",
        &pid_arg(fx.pid),
        "--record",
        &s(&rec),
        "--html",
        &s(&html),
        "--svg",
        &s(&svg),
        "--format",
        "json",
        "--quiet",
        "--duration",
        "3s",
        "--interval",
        "250ms",
    ]);
    (fx, live, rec, html, svg)
}

fn leaking_key(report: &Value) -> String {
    report["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["leaking"] == json!(true)))
        .and_then(|g| g["key"].as_str())
        .unwrap_or_else(|| panic!("no leaking group: {}", keys(report)))
        .to_owned()
}

#[test]
fn issue11_html_of_the_live_watch_and_of_its_recording_agree() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_fx, live, rec, html, svg) = watch_leak(tmp.path());
    let key = leaking_key(&live);
    let page = std::fs::read_to_string(&html).expect("read the live page");
    // The page embeds exactly the JSON report.
    let in_page = embedded(&page, "fdiff-report");
    assert_eq!(
        in_page, live,
        "the page's report == the --format json report"
    );
    // Self-contained: nothing fetched from anywhere.
    for bad in ["http://", "https://", "<link", "src="] {
        let hits: Vec<&str> = page
            .match_indices(bad)
            .map(|(i, _)| &page[i.saturating_sub(40)..(i + 60).min(page.len())])
            .filter(|ctx| !ctx.contains("http://www.w3.org/2000/svg"))
            .collect();
        assert!(hits.is_empty(), "{bad:?} in the page: {hits:?}");
    }
    assert!(page.contains("LEAK"), "the verdict");
    assert!(
        page.contains(&html_escaped(&key)),
        "the leaking key {key:?}"
    );

    // The timeline: [t, count] within the watch, growing for the leak; its survivors listed.
    let g = live["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["key"] == json!(key)))
        .expect("the leaking group");
    let tl = g["timeline"].as_array().expect("timeline");
    assert!(tl.len() >= 6 && tl.len() <= 512, "{} points", tl.len());
    let (t0, t1) = (
        live["started_at"].as_f64().expect("started_at"),
        live["ended_at"].as_f64().expect("ended_at"),
    );
    let first = &tl[0];
    let last = &tl[tl.len() - 1];
    assert!(
        first[0].as_f64().expect("t") >= t0 - 1e-3,
        "{first:?} before {t0}"
    );
    assert!(
        last[0].as_f64().expect("t") <= t1 + 1e-3,
        "{last:?} after {t1}"
    );
    assert!(
        last[1].as_f64() > first[1].as_f64(),
        "a leak climbs: {first:?} .. {last:?}"
    );
    let survivors = g["survivors"].as_u64().expect("survivors");
    let fds = g["survivor_fds"].as_array().expect("survivor_fds");
    assert!(
        !fds.is_empty() && fds.len() as u64 <= survivors,
        "{} survivor fds of {survivors}",
        fds.len()
    );

    // The recording gives the same page data.
    let off_html = tmp.path().join("offline.html");
    let off_svg = tmp.path().join("offline.svg");
    let o = fdiff(&[
        "report",
        &s(&rec),
        "--html",
        &s(&off_html),
        "--svg",
        &s(&off_svg),
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let off_page = std::fs::read_to_string(&off_html).expect("read the offline page");
    assert_eq!(
        embedded(&off_page, "fdiff-report"),
        in_page,
        "report's page == the live page (report)"
    );
    assert_eq!(
        embedded(&off_page, "fdiff-charts"),
        embedded(&page, "fdiff-charts"),
        "report's page == the live page (charts)"
    );
    let (a, b) = (
        std::fs::read_to_string(&svg).expect("live svg"),
        std::fs::read_to_string(&off_svg).expect("offline svg"),
    );
    assert!(
        a.starts_with("<svg") && a.contains("#D55E00"),
        "the leak drawn"
    );
    assert_eq!(a, b, "the same chart from the live watch and the recording");
}

#[test]
fn issue11_html_to_a_bad_path_fails_before_the_watch() {
    let o = fdiff(&[
        "demo",
        "--html",
        "/nonexistent-dir/x.html",
        "--duration",
        "1s",
    ]);
    let line = assert_error(&o, 1);
    assert!(line.contains("/nonexistent-dir/x.html"), "{line}");
    assert!(
        !stdout_of(&o).contains("verdict"),
        "no watch ran: {}",
        show(&o)
    );
}

fn html_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Debian's `chromium` (or another name for it), if installed.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// Run headless Chromium on `page` with `extra` flags (its own fresh profile); returns
/// (stdout, stderr). Killed after two minutes: a loaded machine starts it slowly.
fn run_chromium(exe: &Path, page: &Path, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().expect("start chromium");
    let o = finish(child, Duration::from_secs(120));
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Console output of the page in Chromium's log: an uncaught error or a console.error.
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect()
}

#[test]
fn issue11_html_renders_in_headless_chromium() {
    let Some(exe) = chromium() else {
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_fx, live, _rec, html, _svg) = watch_leak(tmp.path());
    let key = leaking_key(&live);

    let (dom, err) = run_chromium(&exe, &html, &["--dump-dom"]);
    assert!(
        dom.contains("data-rendered=\"ok\""),
        "the page's script ran to its end; stderr:\n{err}"
    );
    assert!(
        !dom.contains("<div id=\"fdiff-js-error\""),
        "a script error: {}",
        dom.lines()
            .find(|l| l.contains("<div id=\"fdiff-js-error\""))
            .unwrap_or("")
    );
    assert!(dom.contains(&html_escaped(&key)), "the leaking key {key:?}");
    // The chart was drawn: the script added a path per line, the leak among them.
    assert!(
        dom.contains("class=\"line leak\"") && dom.contains("class=\"line total\""),
        "the chart's lines in the DOM"
    );
    assert!(
        console_errors(&err).is_empty(),
        "{:?}",
        console_errors(&err)
    );

    let shot = tmp.path().join("shot.png");
    let (_, err) = run_chromium(
        &exe,
        &html,
        &[
            "--window-size=1280,1000",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(
        console_errors(&err).is_empty(),
        "{:?}",
        console_errors(&err)
    );
    let (w, h, px) = decode_rgb(&shot);
    assert!(w >= 1000 && h >= 800, "{w}x{h}");
    // The chart area (below the header, from a quarter to two thirds down): many colours,
    // and the leak's vermillion among them.
    let mut colours = std::collections::HashSet::new();
    let mut vermillion = 0;
    let mut ink = 0;
    for y in h / 4..h * 2 / 3 {
        for x in 0..w {
            let p = px[(y * w + x) as usize];
            colours.insert(p);
            if p != [255, 255, 255] {
                ink += 1;
            }
            let [r, g, b] = p;
            if r > 190 && (70..130).contains(&g) && b < 50 {
                vermillion += 1;
            }
        }
    }
    let area = (w * (h * 2 / 3 - h / 4)) as usize;
    assert!(
        colours.len() > 20,
        "{} colours in the chart area",
        colours.len()
    );
    assert!(ink * 100 > area, "{ink} of {area} pixels not white");
    assert!(
        vermillion > 50,
        "{vermillion} vermillion pixels: the leak line"
    );
}

/// A PNG as (width, height, RGB pixels).
fn decode_rgb(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut dec = png::Decoder::new(std::io::BufReader::new(f));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let step = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(step)
        .map(|c| match step {
            1 | 2 => [c[0]; 3],
            _ => [c[0], c[1], c[2]],
        })
        .collect();
    (info.width, info.height, px)
}
