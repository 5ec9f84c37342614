//! The live view drawn on ratatui's TestBackend from a fixed model: the screens at 120×40
//! and 80×24, the detail popup, and what the keys do.

use super::key;
use super::model::{EventRow, GroupRow, Member, Model, ProcRow, SortBy, Standing};
use super::render::{Ui, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyModifiers};

fn row(
    kind: &str,
    key: &str,
    count: u64,
    opened: u64,
    closed: u64,
    rate: f64,
    s: Standing,
) -> GroupRow {
    let spark: Vec<f64> = (0..24)
        .map(|i| if s == Standing::Leak { i as f64 } else { 5.0 })
        .collect();
    GroupRow {
        kind: kind.to_owned(),
        key: key.to_owned(),
        count,
        opened,
        closed,
        rate,
        standing: s,
        leak_since: (s == Standing::Leak).then_some(20),
        timeline: if s == Standing::Leak {
            (0..=20).map(|i| (i as f64 * 0.5, i as f64 * 2.0)).collect()
        } else {
            Vec::new()
        },
        spark,
        members: vec![Member {
            pid: 4242,
            comm: "api-server".to_owned(),
            count,
            opened,
            closed,
            rate,
            leaking: s == Standing::Leak,
        }],
        examples: if s == Standing::Leak {
            vec!["[4242] 57 file /srv/upload-57.pdf".to_owned()]
        } else {
            Vec::new()
        },
    }
}

fn model(ticks: u64) -> Model {
    Model {
        ticks,
        elapsed: 10.0,
        interval: 0.5,
        procs: vec![ProcRow {
            pid: 4242,
            comm: "api-server".to_owned(),
            fds: 71,
            soft_limit: Some(1024),
            exited: false,
            leak_rate: 4.0,
            eta_secs: Some(238.25),
            history: (0..=20)
                .map(|i| (i as f64 * 0.5, 31.0 + i as f64 * 2.0))
                .collect(),
        }],
        groups: vec![
            row(
                "file",
                "/srv/tmp/churn-*.tmp",
                20,
                60,
                60,
                0.0,
                Standing::Churn,
            ),
            row("file", "/srv/upload-*.pdf", 40, 40, 0, 4.0, Standing::Leak),
            row(
                "socket",
                "tcp 10.0.0.5:5432 ESTABLISHED",
                5,
                0,
                0,
                0.0,
                Standing::Steady,
            ),
        ],
        events: vec![
            EventRow {
                elapsed: 10.0,
                kind: "file".to_owned(),
                key: "/srv/upload-*.pdf".to_owned(),
                opened: 8,
                closed: 0,
                repeats: 4,
            },
            EventRow {
                elapsed: 9.5,
                kind: "file".to_owned(),
                key: "/srv/tmp/churn-*.tmp".to_owned(),
                opened: 3,
                closed: 3,
                repeats: 1,
            },
        ],
        warnings: Vec::new(),
        ended: None,
    }
}

fn screen(w: u16, h: u16, m: &Model, ui: &Ui) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| draw(f, m, ui)).expect("draw");
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_owned()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn issue11_tui_screen_120x40() {
    insta::assert_snapshot!(screen(120, 40, &model(21), &Ui::default()));
}

#[test]
fn issue11_tui_screen_80x24_keeps_the_essential_columns() {
    let s = screen(80, 24, &model(21), &Ui::default());
    for col in ["verdict", "kind", "key", "count", "rate", "trend"] {
        assert!(s.contains(col), "{col} missing:\n{s}");
    }
    insta::assert_snapshot!(s);
}

#[test]
fn issue11_tui_leak_sorted_first_and_marked_the_tick_it_turns() {
    let s = screen(120, 40, &model(20), &Ui::default());
    let rows: Vec<&str> = s.lines().filter(|l| l.contains("/srv/")).collect();
    assert!(
        rows[0].contains("LEAK") && rows[0].contains("upload"),
        "{s}"
    );
    // The tick it turns the whole row is reversed: the cell style says so.
    let mut t = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let at = |t: &mut Terminal<TestBackend>, ticks| {
        t.draw(|f| draw(f, &model(ticks), &Ui::default()))
            .expect("draw");
        let buf = t.backend().buffer().clone();
        let y = (0..40)
            .find(|&y| {
                let l: String = (0..120).map(|x| buf[(x, y)].symbol().to_owned()).collect();
                l.contains("upload") && l.contains("LEAK") && !l.contains("━")
            })
            .expect("leak row");
        buf[(60, y)].modifier
    };
    let turned = at(&mut t, 20);
    let later = at(&mut t, 21);
    assert_ne!(
        turned, later,
        "the row the tick a leak is found looks like any later tick"
    );
}

#[test]
fn issue11_tui_detail_shows_examples_and_the_per_process_split() {
    let ui = Ui {
        detail: true,
        ..Ui::default()
    };
    let s = screen(120, 40, &model(21), &ui);
    assert!(s.contains("[4242] 57 file /srv/upload-57.pdf"), "{s}");
    assert!(s.contains("api-server"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn issue11_tui_keys() {
    let mut ui = Ui::default();
    let none = KeyModifiers::NONE;
    assert!(key(&mut ui, KeyCode::Char('q'), none, 3));
    assert!(key(&mut ui, KeyCode::Char('c'), KeyModifiers::CONTROL, 3));
    assert!(!key(&mut ui, KeyCode::Char('p'), none, 3));
    assert!(ui.paused);
    key(&mut ui, KeyCode::Char('s'), none, 3);
    assert_eq!(ui.sort, SortBy::Count);
    key(&mut ui, KeyCode::Char('/'), none, 3);
    for c in "q?s".chars() {
        assert!(
            !key(&mut ui, KeyCode::Char(c), none, 3),
            "typed into the filter"
        );
    }
    key(&mut ui, KeyCode::Enter, none, 3);
    assert_eq!(ui.filter, "q?s");
    assert!(!ui.editing);
    key(&mut ui, KeyCode::Esc, none, 3);
    assert!(ui.filter.is_empty());
    key(&mut ui, KeyCode::Down, none, 3);
    key(&mut ui, KeyCode::Down, none, 3);
    key(&mut ui, KeyCode::Down, none, 3);
    assert_eq!(ui.selected, 2, "selection stops at the last row");
    key(&mut ui, KeyCode::Enter, none, 3);
    assert!(ui.detail);
    key(&mut ui, KeyCode::Char('?'), none, 3);
    assert!(ui.help);
    assert!(!key(&mut ui, KeyCode::Char('x'), none, 3));
    assert!(!ui.help, "any key closes the help");
}

#[test]
fn issue11_tui_filter_keeps_matching_rows() {
    let ui = Ui {
        filter: "UPLOAD".to_owned(),
        ..Ui::default()
    };
    let s = screen(120, 40, &model(21), &ui);
    assert!(s.contains("groups: 1 shown of 3"), "{s}");
    assert!(!s.contains("churn-*.tmp  "), "{s}");
}
