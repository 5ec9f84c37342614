//! The full-screen live view (`fdiff --pid …`, `run`, `demo` on a terminal): an observer of
//! the run loop that builds a [`model::Model`] from the tracker's view each tick and hands it
//! to a drawing thread, which owns the terminal, reads the keys and redraws in place.
//!
//! The sampling thread only swaps the latest model into a slot: a slow terminal, or a user
//! sitting in a popup, never delays a tick or the recording. `q` and Ctrl-C (a key in raw
//! mode, not a signal) end the watch by sending fdiff SIGINT, the way Ctrl-C ends it without
//! the view, so the report and `fdiff run`'s forwarding behave the same. The terminal is
//! restored when the view is closed or dropped (the watch ended: duration, SIGTERM, the
//! process exited, an error) and by a panic hook.

pub mod model;
pub mod render;

use crate::source::Tick;
use crate::track::Tracker;
use fdiff_core::Warning;
use fdiff_core::pipeline::{Ended, Observer};
use model::{Collector, Model};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use render::Ui;
use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// Whether a watch shows the live view: stdout is a terminal, and neither `--quiet` nor
/// `--no-tui` asked for less (NO_COLOR only takes the colours away).
pub fn wanted(quiet: bool, no_tui: bool) -> bool {
    !quiet
        && !no_tui
        && io::stdout().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// How long a key poll waits: the longest the drawing thread takes to notice a new model.
const POLL: Duration = Duration::from_millis(50);
/// How long closing waits for the drawing thread (stuck in a write to a stalled terminal)
/// before it restores the terminal anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Shared {
    latest: Mutex<Option<Model>>,
    stop: AtomicBool,
    done: AtomicBool,
}

/// The live view, as an observer of the run loop.
pub struct Tui {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    collector: Collector,
    restored: bool,
    /// Redraw everything each frame: under `fdiff run` the command writes to the same
    /// terminal, and only a whole redraw paints over it.
    full_redraw: bool,
}

impl Tui {
    /// Take over the terminal (raw mode, alternate screen, hidden cursor) and start drawing.
    pub fn start(interval_secs: f64, color: bool, full_redraw: bool) -> io::Result<Tui> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        if let Err(e) = execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(e);
        }
        let backend = ratatui::backend::CrosstermBackend::new(io::stdout());
        let term = match ratatui::Terminal::new(backend) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e);
            }
        };
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fdiff-tui".to_owned())
            .spawn(move || {
                draw_loop(term, &s, color, full_redraw);
                s.done.store(true, Ordering::SeqCst);
            });
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e);
            }
        };
        Ok(Tui {
            shared,
            thread: Some(thread),
            collector: Collector::new(interval_secs),
            restored: false,
            full_redraw,
        })
    }

    /// Stop drawing and give the terminal back; returns the warnings the view showed, for the
    /// caller to print on the normal screen.
    pub fn close(mut self) -> Vec<String> {
        self.shutdown();
        std::mem::take(&mut self.collector.warnings)
    }

    fn shutdown(&mut self) {
        if self.restored {
            return;
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let until = Instant::now() + CLOSE_WAIT;
            while !self.shared.done.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if self.shared.done.load(Ordering::SeqCst) {
                let _ = t.join();
            }
        }
        restore();
        self.restored = true;
        let _ = self.full_redraw;
    }

    fn publish(&self, m: Model) {
        if let Ok(mut slot) = self.shared.latest.lock() {
            *slot = Some(m);
        }
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Observer for Tui {
    fn tick(&mut self, tick: &Tick, tracker: &Tracker) -> fdiff_core::Result<()> {
        let m = self.collector.update(tick, tracker);
        self.publish(m);
        Ok(())
    }

    fn warning(&mut self, warning: &Warning) {
        self.collector.warnings.push(warning.to_string());
    }

    fn finish(&mut self, ended: Ended, _tracker: &Tracker) {
        if let Ok(mut slot) = self.shared.latest.lock()
            && let Some(m) = slot.as_mut()
        {
            m.ended = Some(format!("watch ended ({ended:?})"));
        }
    }
}

/// Leave the alternate screen, show the cursor, leave raw mode. Safe to call twice.
pub fn restore() {
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The message must land on the normal screen, readable, not in raw mode.
            if terminal::is_raw_mode_enabled().unwrap_or(false) {
                restore();
            }
            previous(info);
        }));
    });
}

/// End the watch as Ctrl-C does without the view.
fn interrupt() {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::INT);
}

type Term = ratatui::Terminal<ratatui::backend::CrosstermBackend<io::Stdout>>;

fn draw_loop(mut term: Term, shared: &Shared, color: bool, full_redraw: bool) {
    let mut ui = Ui {
        color,
        ..Ui::default()
    };
    let mut shown = Model::default();
    let mut dirty = true;
    let mut quitting = false;
    while !shared.stop.load(Ordering::SeqCst) {
        if !ui.paused
            && let Ok(mut slot) = shared.latest.lock()
            && let Some(m) = slot.take()
        {
            shown = m;
            dirty = true;
        }
        if dirty {
            if full_redraw {
                let _ = term.clear();
            }
            if term.draw(|f| render::draw(f, &shown, &ui)).is_err() {
                return;
            }
            dirty = false;
        }
        match event::poll(POLL) {
            Ok(true) => match event::read() {
                Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => {
                    let rows = render::shown_rows(&shown, &ui).len();
                    if key(&mut ui, k.code, k.modifiers, rows) && !quitting {
                        quitting = true;
                        interrupt();
                    }
                    dirty = true;
                }
                Ok(Event::Resize(..)) => {
                    let _ = term.autoresize();
                    dirty = true;
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(POLL),
            },
            Ok(false) => {}
            // No terminal to read keys from: keep drawing, sampling goes on regardless.
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Apply one key; true when it asks to end the watch.
pub fn key(ui: &mut Ui, code: KeyCode, mods: KeyModifiers, rows: usize) -> bool {
    if mods.contains(KeyModifiers::CONTROL) && code == KeyCode::Char('c') {
        return true;
    }
    if ui.editing {
        match code {
            KeyCode::Enter => ui.editing = false,
            KeyCode::Esc => {
                ui.editing = false;
                ui.filter.clear();
            }
            KeyCode::Backspace => {
                ui.filter.pop();
            }
            KeyCode::Char(c) if !c.is_control() => ui.filter.push(c),
            _ => {}
        }
        ui.selected = 0;
        return false;
    }
    if ui.help {
        ui.help = false;
        return code == KeyCode::Char('q');
    }
    let last = rows.saturating_sub(1);
    match code {
        KeyCode::Char('q') => return true,
        KeyCode::Char('p') => ui.paused = !ui.paused,
        KeyCode::Char('s') => {
            ui.sort = ui.sort.next();
            ui.selected = 0;
        }
        KeyCode::Char('/') => {
            ui.editing = true;
            ui.detail = false;
        }
        KeyCode::Char('?') => ui.help = true,
        KeyCode::Enter => ui.detail = !ui.detail && rows > 0,
        KeyCode::Esc => {
            if ui.detail {
                ui.detail = false;
            } else {
                ui.filter.clear();
            }
        }
        KeyCode::Down | KeyCode::Char('j') => ui.selected = (ui.selected + 1).min(last),
        KeyCode::Up | KeyCode::Char('k') => ui.selected = ui.selected.saturating_sub(1),
        KeyCode::PageDown => ui.selected = (ui.selected + 10).min(last),
        KeyCode::PageUp => ui.selected = ui.selected.saturating_sub(10),
        KeyCode::Home => ui.selected = 0,
        KeyCode::End => ui.selected = last,
        _ => {}
    }
    false
}

#[cfg(test)]
mod tests;
