//! Man pages from the clap definitions (clap_mangen): `fdiff(1)` and one page per command
//! (`fdiff-snapshot(1)`, …), with the sections a terminal's `--help` has no room for — exit
//! status (from [`crate::exit_codes::DOCUMENTED`]), permissions, environment, the JSON schemas
//! by name, examples — and [`generate`], which writes them and the completion scripts for
//! packaging (`fdiff __generate DIR`).

use crate::complete::{self, Shell};
use clap::CommandFactory;
use clap_mangen::roff::{self, Roff, bold, italic, roman};
use std::path::Path;

/// One page: its file name (`fdiff-run.1`) and its roff text.
pub struct Page {
    /// The file name, `NAME.1`.
    pub file: String,
    /// The page's roff source.
    pub roff: String,
}

/// `fdiff(1)` first, then a page per visible command.
pub fn pages() -> Vec<Page> {
    let mut cmd = crate::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = vec![page(&cmd, None)];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out.push(page(sub, Some(sub.get_name())));
    }
    out
}

fn page(cmd: &clap::Command, sub: Option<&str>) -> Page {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("fdiff {}", env!("CARGO_PKG_VERSION")))
        .manual("User Commands");
    let mut buf = Vec::new();
    // The page is assembled section by section: clap's after_help (examples and exit codes
    // laid out for a terminal) is replaced by proper EXIT STATUS and EXAMPLES sections.
    let rendered = man
        .render_title(&mut buf)
        .and_then(|()| man.render_name_section(&mut buf))
        .and_then(|()| man.render_synopsis_section(&mut buf))
        .and_then(|()| man.render_description_section(&mut buf))
        .and_then(|()| {
            if cmd.get_arguments().any(|a| !a.is_hide_set()) {
                man.render_options_section(&mut buf)
            } else {
                Ok(())
            }
        })
        .and_then(|()| {
            if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
                man.render_subcommands_section(&mut buf)
            } else {
                Ok(())
            }
        });
    // Writing into a Vec cannot fail.
    debug_assert!(rendered.is_ok());
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    text.push_str(&extra_sections(sub).to_roff());
    Page {
        file: format!("{}.1", man.get_filename().trim_end_matches(".1")),
        roff: text,
    }
}

fn section(r: &mut Roff, title: &str) {
    r.control("SH", [title]);
}

fn para(r: &mut Roff, text: &str) {
    r.control("PP", []).text([roman(text)]);
}

fn item(r: &mut Roff, term: &str, text: &str) {
    r.control("TP", []).text([bold(term)]).text([roman(text)]);
}

fn example(r: &mut Roff, cmdline: &str, what: &str) {
    r.control("TP", [])
        .text([bold(cmdline)])
        .text([roman(what)]);
}

fn extra_sections(sub: Option<&str>) -> Roff {
    let mut r = Roff::new();
    if sub.is_none() {
        section(&mut r, "OVERVIEW");
        para(
            &mut r,
            "Each tick fdiff reads every open file descriptor of the watched processes from \
             /proc/PID/fd, classifies and decodes it (file, deleted file, directory, device, TCP \
             and UDP endpoints and state, unix path and peer, pipe, eventfd, epoll, timerfd, \
             signalfd, inotify, pidfd, memfd), diffs it against the previous tick, groups what \
             accumulates (/srv/upload-*.pdf, tcp -> 10.0.0.5:5432 ESTABLISHED) and reports each \
             group's growth rate and when the process will reach its RLIMIT_NOFILE. It never \
             attaches with ptrace and never stops the target.",
        );
        para(
            &mut r,
            "Without a command, fdiff watches the processes selected by --pid or --name until \
             Ctrl-C, SIGTERM, --duration, --count or the processes' exit, printing live lines, \
             then prints the report.",
        );
    }
    section(&mut r, "EXIT STATUS");
    match sub {
        Some("run") => para(
            &mut r,
            "The command's own exit status (128 + N when signal N killed it, like a shell); \
             with --fail-on-leak, 3 when a group leaks and the command itself succeeded; 126 \
             when the command exists but cannot be executed; 127 when it (or its #! \
             interpreter or dynamic loader) does not exist; 2 for a usage error; 1 for an \
             error of fdiff's own.",
        ),
        Some("completions") => para(
            &mut r,
            "0 when the script was printed; 2 for a usage error.",
        ),
        _ => {
            for (code, meaning) in crate::exit_codes::DOCUMENTED {
                item(&mut r, code, &crate::exit_codes::plain(meaning));
            }
        }
    }
    para(
        &mut r,
        "Every error is one line on standard error, starting with \"fdiff: \", naming the \
         offending value in quotes.",
    );
    if sub != Some("completions") {
        section(&mut r, "PERMISSIONS");
        para(
            &mut r,
            "fdiff reads /proc/PID/fd, /proc/PID/fdinfo and /proc/PID/net, which the kernel \
             allows for processes of the same user (PTRACE_MODE_READ), or for root or a process \
             with CAP_SYS_PTRACE. A non-dumpable process (setuid, or prctl(PR_SET_DUMPABLE, 0)) \
             needs root or CAP_SYS_PTRACE even for its own user. A process that cannot be read \
             is an error (exit 1) when selected by --pid; processes matched by --name or \
             --children that cannot be read are counted and said in one warning line.",
        );
        para(
            &mut r,
            "fdiff raises its own soft RLIMIT_NOFILE to the hard limit and holds 4 fds per \
             watched process; processes beyond that limit are not watched and are counted in \
             the report.",
        );
    }
    section(&mut r, "ENVIRONMENT");
    item(
        &mut r,
        "NO_COLOR",
        "When set to anything non-empty, no color, even on a terminal (color is only ever used \
         on a terminal).",
    );
    item(
        &mut r,
        complete::ENV_VAR,
        "Set by the completion scripts when they ask fdiff for candidates; not for use by hand.",
    );
    if sub != Some("completions") {
        section(&mut r, "JSON OUTPUT");
        para(
            &mut r,
            "With --format json the output is one JSON document whose \"schema\" field names \
             its format; the fields are described in the README \
             (/usr/share/doc/fdiff/README.md.gz when installed from the package).",
        );
        item(&mut r, "fdiff/snapshot/v1", "fdiff snapshot --format json.");
        item(
            &mut r,
            "fdiff/report/v1",
            "the report of a watch, fdiff run, fdiff demo and fdiff report with --format json.",
        );
        item(&mut r, "fdiff/diff/v1", "fdiff diff --format json.");
        item(
            &mut r,
            "fdiff/recording/v1",
            "--record FILE.jsonl: JSON Lines, a header then one line per tick.",
        );
    }
    section(&mut r, "EXAMPLES");
    for (cmdline, what) in examples(sub) {
        example(&mut r, cmdline, what);
    }
    section(&mut r, "SEE ALSO");
    let mut see: Vec<Vec<roff::Inline>> = Vec::new();
    if sub.is_some() {
        see.push(vec![bold("fdiff"), roman("(1)")]);
    } else {
        let cmd = crate::cli::Cli::command();
        for s in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            see.push(vec![bold(format!("fdiff-{}", s.get_name())), roman("(1)")]);
        }
    }
    for (name, sect) in [("lsof", "8"), ("proc", "5"), ("getrlimit", "2")] {
        see.push(vec![bold(name), roman(format!("({sect})"))]);
    }
    let mut line = Vec::new();
    for (i, s) in see.into_iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.extend(s);
    }
    r.text(line);
    section(&mut r, "VERSION");
    r.text([roman(format!("fdiff {}", crate::cli::VERSION))]);
    if sub.is_none() {
        section(&mut r, "BUGS");
        r.text([
            roman("Sampling cannot see what opens and closes within one interval. Please "),
            roman("quote "),
            italic("fdiff --version"),
            roman(" in bug reports."),
        ]);
    }
    r
}

fn examples(sub: Option<&str>) -> &'static [(&'static str, &'static str)] {
    match sub {
        None => &[
            (
                "fdiff demo",
                "Watch a built-in leaky program for 8 seconds and report.",
            ),
            (
                "fdiff --pid 1234",
                "Watch pid 1234 until Ctrl-C, then report.",
            ),
            (
                "fdiff --name gunicorn --children",
                "Every gunicorn process and all their workers, respawns included.",
            ),
            (
                "fdiff run --fail-on-leak -- pytest -x",
                "A CI leak gate: exit 3 on a leak.",
            ),
            (
                "fdiff --pid 1234 --record rec.jsonl",
                "Record every tick; then fdiff report rec.jsonl.",
            ),
        ],
        Some("snapshot") => &[
            ("fdiff snapshot --pid 1234", "One table of every open fd."),
            (
                "fdiff snapshot --pid 1234 --format json > a.json",
                "The same as fdiff/snapshot/v1, for fdiff diff.",
            ),
        ],
        Some("diff") => &[
            (
                "fdiff diff a.json b.json",
                "What changed between two snapshots.",
            ),
            (
                "fdiff diff rec.jsonl@0 rec.jsonl@-1",
                "The first against the last tick of a recording.",
            ),
        ],
        Some("report") => &[
            (
                "fdiff report rec.jsonl",
                "The report the live watch gave, again.",
            ),
            (
                "fdiff report --format json --fail-on-leak rec.jsonl",
                "As fdiff/report/v1; exit 3 if a group leaks.",
            ),
        ],
        Some("run") => &[
            (
                "fdiff run --fail-on-leak -- pytest -x",
                "Run the tests, watch them and every descendant, exit 3 on a leak.",
            ),
            (
                "fdiff run --output leaks.txt -- ./server --port 8080",
                "The report into a file instead of standard error.",
            ),
        ],
        Some("demo") => &[("fdiff demo --duration 20s", "A longer demo.")],
        Some("completions") => &[
            (
                "fdiff completions bash > ~/.local/share/bash-completion/completions/fdiff",
                "Tab completion for bash, for an install by cargo (the package installs it).",
            ),
            (
                "fdiff completions zsh > ~/.zfunc/_fdiff",
                "For zsh, with fpath+=(~/.zfunc) before compinit.",
            ),
        ],
        Some(_) => &[],
    }
}

/// Write `man/*.1` and `completions/{fdiff.bash,_fdiff,fdiff.fish}` under `dir`.
pub fn generate(dir: &Path) -> Result<(), crate::error::Error> {
    let io = |e: std::io::Error, p: &Path| {
        crate::error::Error::failed(format!(
            "cannot write {}: {e}",
            crate::util::quoted(&p.to_string_lossy())
        ))
    };
    let man = dir.join("man");
    let comp = dir.join("completions");
    for d in [&man, &comp] {
        std::fs::create_dir_all(d).map_err(|e| io(e, d))?;
    }
    for p in pages() {
        let path = man.join(&p.file);
        std::fs::write(&path, p.roff).map_err(|e| io(e, &path))?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = comp.join(shell.file_name());
        let mut buf = Vec::new();
        complete::write_script(shell, &mut buf).map_err(|e| io(e, &path))?;
        std::fs::write(&path, buf).map_err(|e| io(e, &path))?;
    }
    Ok(())
}
