//! Anonymous-inode decoder: eventfd, epoll, timerfd, signalfd, inotify, fanotify, pidfd and the
//! rest, from the text of /proc/PID/fdinfo/N.

use super::model::AnonDetail;
use super::{bpf, inotify, io_uring, pidfd};

/// Decode an anon inode of `subtype` from its fdinfo text (`None` when it could not be read:
/// the subtype is still known from the link). A pidfd's target name is read from /proc and a
/// bpf object's name asked of the kernel.
pub(crate) fn decode(subtype: &str, fdinfo: Option<&str>) -> AnonDetail {
    decode_with(subtype, fdinfo, pidfd::proc_comm, bpf::kernel_name)
}

/// [`decode`] with the lookups beyond fdinfo given, so tests need no live process.
pub(crate) fn decode_with(
    subtype: &str,
    fdinfo: Option<&str>,
    comm: impl Fn(i32) -> Option<String>,
    bpf_name: impl Fn(bpf::Obj, u32) -> Option<String>,
) -> AnonDetail {
    let mut d = AnonDetail {
        subtype: subtype.to_owned(),
        ..AnonDetail::default()
    };
    let Some(text) = fdinfo else { return d };
    match subtype {
        "eventfd" => {
            // The kernel prints the counter in hex ("eventfd-count: %16llx").
            d.eventfd_count =
                field(text, "eventfd-count:").and_then(|v| u64::from_str_radix(v, 16).ok());
            // Linux 6.0+: an id that tells eventfds apart (and names both ends of one).
            d.id = field(text, "eventfd-id:").and_then(|v| v.parse().ok());
        }
        "eventpoll" => {
            let mut tfds: Vec<i32> = text
                .lines()
                .filter_map(|l| l.strip_prefix("tfd:"))
                .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
                .collect();
            tfds.sort_unstable();
            d.tfd = Some(tfds);
        }
        "timerfd" => {
            d.clockid = field(text, "clockid:").map(clock_name);
            d.interval_secs = field(text, "it_interval:").and_then(timespec_secs);
            d.value_secs = field(text, "it_value:").and_then(timespec_secs);
        }
        "signalfd" => {
            d.sigmask = field(text, "sigmask:")
                .and_then(|v| u64::from_str_radix(v, 16).ok())
                .map(signal_names);
        }
        "inotify" => inotify::decode(&mut d, text),
        "fanotify" => {
            // The first "fanotify flags:" line describes the group; every other
            // "fanotify " line is one mark.
            d.watches = Some(
                text.lines()
                    .filter(|l| l.starts_with("fanotify ") && !l.starts_with("fanotify flags:"))
                    .count() as u32,
            );
        }
        "pidfd" => pidfd::decode(&mut d, text, comm),
        "io_uring" => d.io_uring = io_uring::decode(text),
        other => {
            if let Some(obj) = bpf::Obj::of(other) {
                bpf::decode(&mut d, obj, text, bpf_name);
            }
        }
    }
    d
}

/// The value after `key` on the first line that starts with it, trimmed.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn clock_name(v: &str) -> String {
    match v {
        "0" => "realtime",
        "1" => "monotonic",
        "7" => "boottime",
        "8" => "realtime_alarm",
        "9" => "boottime_alarm",
        other => other,
    }
    .to_owned()
}

/// "(5, 250000000)" → 5.25
fn timespec_secs(v: &str) -> Option<f64> {
    let inner = v.strip_prefix('(')?.strip_suffix(')')?;
    let (s, ns) = inner.split_once(',')?;
    let s: f64 = s.trim().parse().ok()?;
    let ns: f64 = ns.trim().parse().ok()?;
    Some(s + ns / 1e9)
}

/// Bit n-1 of the mask is signal n.
fn signal_names(mask: u64) -> Vec<String> {
    (1..=64)
        .filter(|n| mask & (1u64 << (n - 1)) != 0)
        .map(signal_name)
        .collect()
}

fn signal_name(n: u32) -> String {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match n {
        1..=31 => NAMES[n as usize - 1].to_owned(),
        n => format!("SIGRT{}", n - 32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        crate::snapshot::testdata("fdinfo", name)
    }

    #[test]
    fn eventfd_counter_is_hex() {
        let d = decode("eventfd", Some(&fixture("eventfd.txt")));
        assert_eq!(d.eventfd_count, Some(0x1a));
        assert_eq!(d.id, Some(3));
    }

    #[test]
    fn epoll_lists_watched_fds_sorted() {
        let d = decode("eventpoll", Some(&fixture("eventpoll.txt")));
        assert_eq!(d.tfd, Some(vec![5, 9, 12]));
    }

    #[test]
    fn timerfd_clock_and_interval() {
        let d = decode("timerfd", Some(&fixture("timerfd.txt")));
        assert_eq!(d.clockid.as_deref(), Some("monotonic"));
        assert_eq!(d.interval_secs, Some(5.0));
        assert_eq!(d.value_secs, Some(4.25));
    }

    #[test]
    fn signalfd_mask_names() {
        let d = decode("signalfd", Some(&fixture("signalfd.txt")));
        assert_eq!(
            d.sigmask,
            Some(vec!["SIGUSR1".to_owned(), "SIGUSR2".to_owned()])
        );
    }

    #[test]
    fn inotify_and_fanotify_watch_counts() {
        assert_eq!(
            decode("inotify", Some(&fixture("inotify.txt"))).watches,
            Some(2)
        );
        assert_eq!(
            decode("fanotify", Some(&fixture("fanotify.txt"))).watches,
            Some(1)
        );
    }

    #[test]
    fn pidfd_pid() {
        assert_eq!(
            decode("pidfd", Some(&fixture("pidfd.txt"))).target_pid,
            Some(4242)
        );
    }

    #[test]
    fn garbage_and_missing_fdinfo_never_panic() {
        for sub in [
            "eventfd",
            "eventpoll",
            "timerfd",
            "signalfd",
            "inotify",
            "pidfd",
            "io_uring",
        ] {
            let d = decode(sub, Some(&fixture("garbage.txt")));
            assert_eq!(d.subtype, sub);
            assert_eq!(decode(sub, None).subtype, sub);
        }
        assert_eq!(
            decode("timerfd", Some("it_interval: (5,")).interval_secs,
            None
        );
        assert_eq!(signal_name(34), "SIGRT2");
    }
}
