//! The command line, clap-only: parsed here, validated into a [`crate::config`] before any logic.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

const ABOUT: &str = "Find file-descriptor leaks: watch what a process opens and does not close.";

const EXAMPLES: &str = "\
Examples:
  fdiff demo                                 watch a built-in leaky program for 8 seconds
  fdiff --pid 1234                           watch until Ctrl-C, then report
  fdiff --name gunicorn --children           every gunicorn process and its workers
  fdiff run --fail-on-leak -- pytest         a CI leak gate
  fdiff snapshot --pid 1234 --format json > a.json
  fdiff diff a.json b.json                   what changed between two snapshots
  fdiff --pid 1234 --record rec.jsonl        record, then: fdiff report rec.jsonl";

/// `--help`'s closing text: the examples, the exit codes (from the one table in
/// [`crate::exit_codes`]) and the permission fdiff needs.
fn after_help() -> String {
    format!(
        "{EXAMPLES}\n\nExit codes:\n{}\nReading another user's fds needs root or CAP_SYS_PTRACE.",
        crate::exit_codes::help_table()
    )
}

/// `fdiff --version`: the version and the git commit it was built from (`-dirty` when the tree
/// had uncommitted changes), for bug reports; `unknown` when built without git.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FDIFF_COMMIT"),
    ")"
);

const RUN_AFTER_HELP: &str = "\
Exit status: the command's own (128+N when signal N killed it, like a shell); with
--fail-on-leak, 3 when a group leaks and the command itself succeeded; 127 when the command
could not be started; 2 for a usage error. Ctrl-C and SIGTERM are passed to the command and the
report is still printed.

Example: fdiff run --fail-on-leak -- pytest -x";

#[derive(Debug, Parser)]
#[command(
    name = "fdiff",
    version = VERSION,
    about = ABOUT,
    after_help = after_help(),
    args_conflicts_with_subcommands = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Watch (the default command).
    #[command(flatten)]
    pub watch: WatchArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every open fd of the selected processes once.
    Snapshot(SnapshotArgs),
    /// Diff two snapshots: files from 'snapshot --format json', or RECORDING.jsonl@N.
    Diff(DiffArgs),
    /// Re-analyse a recording made with --record: the same report the live watch gave.
    Report(ReportArgs),
    /// Run a command, watch it and its descendants until it exits, and report.
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Watch a built-in leaky program for a few seconds and report: the first thing to try.
    Demo(DemoArgs),
    /// Print a shell's completion script: bash, zsh or fish (the script asks fdiff for
    /// candidates as you type, so --pid offers running pids and --name process names).
    #[command(after_help = crate::complete::COMPLETIONS_AFTER_HELP)]
    Completions(CompletionsArgs),
    /// Write the man pages and completion scripts into a directory, for packaging (hidden).
    #[command(name = "__generate", hide = true)]
    Generate(GenerateArgs),
    /// Watch continuously and serve Prometheus/OpenMetrics metrics, the live report and a
    /// health check over HTTP.
    Serve(ServeArgs),
    /// The leaky program `fdiff demo` watches (hidden).
    #[command(name = "__demo-child", hide = true)]
    DemoChild,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum FormatArg {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum GroupByArg {
    /// The normalized key: /tmp/upload-*.pdf, tcp -> 10.0.0.5:5432 ESTABLISHED, …
    #[default]
    Key,
    /// The kind alone.
    Kind,
    /// The exact target.
    Target,
}

#[derive(Debug, Args, Default)]
pub struct SelectArgs {
    /// Watch this process (repeatable).
    #[arg(short, long = "pid", value_name = "PID", add = crate::complete::pid_candidates())]
    pub pids: Vec<String>,
    /// Watch processes whose name (comm) matches this regex.
    #[arg(short, long, value_name = "REGEX", add = crate::complete::name_candidates())]
    pub name: Option<String>,
    /// With --name: match the whole command line instead, like 'pgrep -f'.
    #[arg(long, requires = "name")]
    pub full: bool,
    /// Also watch every descendant of the selected processes, re-evaluated each tick.
    #[arg(short, long)]
    pub children: bool,
    /// When nothing matches yet, wait until something does.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args, Default)]
pub struct AnalysisArgs {
    /// How to group fds.
    #[arg(long, value_enum, default_value_t = GroupByArg::Key)]
    pub group_by: GroupByArg,
    /// Count only fds whose target matches this regex.
    #[arg(long = "match", value_name = "REGEX")]
    pub match_: Option<String>,
    /// Leave out fds whose target matches this regex.
    #[arg(long, value_name = "REGEX")]
    pub exclude: Option<String>,
    /// Output format of the report.
    #[arg(short, long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
}

#[derive(Debug, Args, Default)]
pub struct TimingArgs {
    /// Time between snapshots (250ms, 5s, 2m; from 10ms to 1day). Sampling cannot see what opens and closes
    /// within one interval, nor an fd closed and reopened onto the same file at the same
    /// number between two ticks: that looks unchanged.
    #[arg(short, long, value_name = "DURATION", default_value = "1s")]
    pub interval: String,
    /// Stop after this long, at most 100years (default: until Ctrl-C, SIGTERM or the processes
    /// exit).
    #[arg(short, long, value_name = "DURATION", conflicts_with = "count")]
    pub duration: Option<String>,
    /// Stop after this many ticks.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// No live lines, only the final report.
    #[arg(short, long)]
    pub quiet: bool,
    /// Live lines instead of the full-screen live view on a terminal.
    #[arg(long)]
    pub no_tui: bool,
}

/// `--html FILE` and `--svg FILE`: the report as a page and its main chart (watch, `run`,
/// `demo`, `report`).
#[derive(Debug, Args, Default, Clone)]
pub struct ChartArgs {
    /// Also write the report as one self-contained HTML page (timelines, groups, roll-ups).
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    /// Also write the main timeline chart alone as SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub svg: Option<PathBuf>,
}

/// What a watch and `fdiff run` share.
#[derive(Debug, Args, Default)]
pub struct WatchOptionsArgs {
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    /// Write every tick to this file as JSON Lines (flushed each tick).
    #[arg(long, value_name = "FILE.jsonl")]
    pub record: Option<PathBuf>,
    /// Exit 3 when a group leaks (fdiff run: when the command itself succeeded).
    #[arg(long)]
    pub fail_on_leak: bool,
    /// Live lines fd by fd (default: per group, only groups whose count moved), and every
    /// process in the report however many (default: more than 20 fold into roll-ups).
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub charts: ChartArgs,
    /// The stacks that opened the leaking groups' fds (fdiff run: traced with ptrace, no root
    /// needed; a running process: an eBPF probe, root or CAP_BPF+CAP_PERFMON). Bare: captured
    /// once a group of the process is judged leaking; =now: from the start.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "leak", value_name = "WHEN")]
    pub stacks: Option<StacksArg>,
}

/// When `--stacks` starts capturing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StacksArg {
    /// Once a group of the process is judged leaking.
    Leak,
    /// From the start.
    Now,
}

#[derive(Debug, Args, Default)]
pub struct WatchArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub watch: WatchOptionsArgs,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier snapshot: a JSON file, or RECORDING.jsonl@N (N from 0; -1 is the last tick).
    pub before: String,
    /// The later snapshot.
    pub after: String,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A recording written by --record.
    pub recording: PathBuf,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    /// Exit 3 when a group leaks.
    #[arg(long)]
    pub fail_on_leak: bool,
    /// List every process in the report, however many (default: more than 20 fold into
    /// their roll-ups).
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub charts: ChartArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub watch: WatchOptionsArgs,
    /// Write the report here instead of stderr.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long to watch (at most 100years).
    #[arg(short, long, value_name = "DURATION", default_value = "8s")]
    pub duration: String,
    /// Time between snapshots (from 10ms to 1day).
    #[arg(short, long, value_name = "DURATION", default_value = "500ms")]
    pub interval: String,
    /// No live lines, only the final report.
    #[arg(short, long)]
    pub quiet: bool,
    /// Live lines instead of the full-screen live view on a terminal.
    #[arg(long)]
    pub no_tui: bool,
    /// Output format of the report.
    #[arg(short, long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    #[command(flatten)]
    pub charts: ChartArgs,
    /// Also show which code opened the leaking fds (the eBPF probe on the running demo
    /// program: root or CAP_BPF+CAP_PERFMON; without them the demo says so and goes on).
    /// Bare: captured once a group is judged leaking; =now: from the start.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "leak", value_name = "WHEN")]
    pub stacks: Option<StacksArg>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: crate::complete::Shell,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Where to write man/*.1 and completions/{fdiff.bash,_fdiff,fdiff.fish}.
    pub dir: PathBuf,
}

/// `fdiff serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Count every process of this cgroup v2 subtree (re-read each tick), e.g.
    /// /system.slice/nginx.service (repeatable).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Vec<String>,
    /// Count every process of this systemd unit's cgroup (repeatable).
    #[arg(long, value_name = "NAME")]
    pub unit: Vec<String>,
    /// Count every process on the host fdiff may read.
    #[arg(long)]
    pub all: bool,
    /// Address to serve on; only loopback without --allow-remote.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9464")]
    pub listen: String,
    /// Allow a --listen address that is not loopback (the metrics name every process).
    #[arg(long)]
    pub allow_remote: bool,
    /// Time between ticks (from 10ms to 1day).
    #[arg(short, long, value_name = "DURATION", default_value = "1s")]
    pub interval: String,
    /// Stop after this long (default: until SIGTERM or Ctrl-C).
    #[arg(short, long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Read a counted process in depth once it uses this share of its soft fd limit.
    #[arg(long, value_name = "PERCENT", default_value = "50%")]
    pub deep_above: String,
    /// Most processes read in depth at once (the rest stay counted).
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub max_deep: usize,
    /// Go back to counting a process read in depth (not one named by --pid/--name) once it has
    /// not grown steadily, neared --deep-above or had a leaking group for this long.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub demote_after: String,
    /// Most groups exposed (top by growth); what is left out is counted.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_groups: usize,
    /// No pid label: processes of the same command are summed into one series.
    #[arg(long)]
    pub no_pid_label: bool,
    /// Also write the metrics to DIR/fdiff.prom each tick (node_exporter textfile collector).
    #[arg(long, value_name = "DIR")]
    pub textfile: Option<PathBuf>,
    /// Connections served at once; more are answered 503.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_connections: usize,
    /// No startup line on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}
