#!/usr/bin/env python3
"""Field-by-field comparison of `fdiff snapshot --format json` with util-linux `lsfd -J`.

Each factory of util-linux's lsfd test helper (test_mkfds) makes its fds in a fresh process;
lsfd and fdiff then read that process, and for every fd each column lsfd fills is checked
against the fdiff field that carries the same fact. A column lsfd fills and fdiff leaves
empty is "missing"; a value that disagrees (where both say the same thing in comparable form)
is "wrong". Prints one line per factory with what is missing or wrong, then the totals.

Usage: scripts/lsfd_compare.py --lsfd PATH/lsfd --mkfds PATH/test_mkfds [--fdiff PATH]
Run as root for the privileged factories (bpf, netns, tun, raw, packet); the others run
either way. Nothing here is installed: build lsfd and test_mkfds from util-linux yourself.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

# Factory, fd numbers, parameters: the helper's defaults where they exist, and the
# parameters util-linux's own tests pass where they do not.
FACTORIES = [
    ("ro-regular-file", [3], ["file=/etc/passwd"]),
    ("make-regular-file", [3], []),
    ("make-regular-file", [3], ["delete=1"]),
    ("directory", [3], ["dir=/etc"]),
    ("rw-character-device", [3], ["chrdev=/dev/zero"]),
    ("pipe-no-fork", [3, 4], []),
    ("socketpair", [3, 4], ["socktype=STREAM"]),
    ("socketpair", [3, 4], ["socktype=STREAM", "halfclose=1"]),
    ("socketpair", [3, 4], ["socktype=DGRAM"]),
    ("unix-stream", [3, 4, 5], []),
    ("unix-stream", [3, 4, 5], ["abstract=1"]),
    ("unix-dgram", [3, 4], []),
    ("unix-in-netns", [3, 4, 5], []),
    ("foreign-sockets", [3, 4], []),
    ("tcp", [3, 4, 5], []),
    ("tcp6", [3, 4, 5], []),
    ("tcp-bare", [3], []),
    ("udp", [3, 4], []),
    ("udp6", [3, 4], []),
    ("udp", [3, 4], ["lite=1"]),
    ("udp6", [3, 4], ["lite=1"]),
    ("ping", [3], []),
    ("ping6", [3], []),
    ("raw", [3], ["protocol=5"]),
    ("raw6", [3], ["protocol=5"]),
    ("netlink", [3], ["protocol=15", "groups=1"]),
    ("sockdiag", [3], []),
    ("mapped-packet-socket", [3], []),
    ("eventfd", [3, 4], []),
    ("eventpoll", [3, 4, 5], []),
    ("timerfd", [3], ["clockid=monotonic", "remaining=99", "interval=5"]),
    ("signalfd", [3], []),
    ("inotify", [3], ["dir=/etc", "file=/etc/passwd"]),
    ("pidfd", [3], ["target-pid=1"]),
    ("mqueue", [3, 4], []),
    ("netns", [3], []),
    ("userns", [3], []),
    ("symlink", [3], ["path=/dev/stdin"]),
    ("pty", [3, 4], []),
    ("cdev-tun", [3], []),
    ("io_uring", [3], []),
    ("bpf-map", [3], ["map-type-id=2", "name=fdiffmap"]),
    ("bpf-prog", [3], ["prog-type-id=2", "name=fdiffprog"]),
    ("bpf-link", [3], []),
]


def has(e, field):
    v = e.get(field)
    return v is not None and v != "" and v != [] and v != "unknown"


def inet_addr(v):
    """lsfd's "addr:port" (IPv6 bracketed), the form fdiff prints too."""
    return v


def io_uring(field):
    return lambda e, v: has(e.get("io_uring") or {}, field)


def anon_is(sub):
    return lambda e: e.get("subtype") == sub


# lsfd column -> check(fdiff entry, lsfd value) -> True when fdiff carries it.
# A column listed with None is compared by value equality against that fdiff field.
def checks():
    def field(name):
        return lambda e, v: has(e, name)

    def equal(name, conv=str):
        return lambda e, v: has(e, name) and conv(e[name]) == conv(v)

    def state(e, v):
        return has(e, "state") and STATES.get(e["state"].lower(), e["state"].lower()) == \
            STATES.get(str(v).lower(), str(v).lower())

    def addr(e, v, name):
        return has(e, name) and e[name] == v

    return {
        "SOCK.PROTONAME": lambda e, v: has(e, "proto"),
        "SOCK.STATE": state,
        "SOCK.TYPE": field("socket_type"),
        "UNIX.PATH": field("path"),
        "UNIX.IPEER": equal("peer"),
        "INET.LADDR": field("local"),
        "INET6.LADDR": field("local"),
        "TCP.LADDR": lambda e, v: addr(e, v, "local"),
        "UDP.LADDR": lambda e, v: addr(e, v, "local"),
        "UDPLITE.LADDR": lambda e, v: addr(e, v, "local"),
        "TCP.RADDR": lambda e, v: addr(e, v, "remote"),
        "UDP.RADDR": lambda e, v: addr(e, v, "remote"),
        "UDPLITE.RADDR": lambda e, v: addr(e, v, "remote"),
        "PING.ID": equal("ping_id"),
        "RAW.PROTOCOL.RAW": field("protocol"),
        "NETLINK.PROTOCOL": field("netlink_family"),
        "NETLINK.LPORT": equal("lport"),
        "NETLINK.GROUPS": equal("groups"),
        "PACKET.IFACE": equal("iface"),
        "PACKET.PROTOCOL.RAW": field("protocol"),
        "SOCK.SHUTDOWN": field("shutdown"),
        "NS.TYPE": equal("ns_type"),
        "EVENTFD.ID": equal("id"),
        "EVENTPOLL.TFDS": field("tfd"),
        "SIGNALFD.MASK": field("sigmask"),
        "TIMERFD.CLOCKID": field("clockid"),
        "TIMERFD.INTERVAL": field("interval_secs"),
        "TIMERFD.REMAINING": field("value_secs"),
        "PIDFD.PID": equal("target_pid"),
        "PIDFD.NSPID": field("nspid"),
        "PIDFD.COMM": field("target_comm"),
        "INOTIFY.INODES.RAW": field("inotify_inodes"),
        "BPF-MAP.ID": equal("id"),
        "BPF-PROG.ID": equal("id"),
        "BPF-LINK.ID": equal("id"),
        "BPF-LINK.PROG-ID": equal("prog_id"),
        "BPF-MAP.TYPE.RAW": field("bpf_type"),
        "BPF-PROG.TYPE.RAW": field("bpf_type"),
        "BPF-LINK.TYPE.RAW": field("bpf_type"),
        "BPF.NAME": equal("bpf_name"),
        "BPF-PROG.TAG": field("bpf_tag"),
        "IO-URING.SQ-MASK": io_uring("sq_entries"),
        "IO-URING.CQ-MASK": io_uring("cq_entries"),
        "IO-URING.USER-FILES": io_uring("user_files"),
        "IO-URING.USER-BUFS": io_uring("user_bufs"),
        "IO-URING.SQES": io_uring("sq_pending"),
        "IO-URING.CQES": io_uring("cq_pending"),
        "TUN.IFACE": equal("tun_iface"),
        "PTMX.TTY-INDEX": equal("tty_index"),
    }


# State names: fdiff prints them as ss does, lsfd in lower case and with names of its own.
STATES = {
    "close": "unconn",
    "unconnected": "unconn",
    "unconn": "unconn",
    "connected": "established",
    "established": "established",
    "listen": "listen",
    "listening": "listen",
}

# lsfd's TYPE (cooked) -> fdiff kind
KINDS = {
    "REG": "file",
    "DIR": "dir",
    "CHR": "device",
    "BLK": "device",
    "FIFO": "pipe",
    "SOCK": "socket",
    "nsfs": "ns",
    "mqueue": "mqueue",
    "LINK": "symlink",
}
SOCK_TYPES = ("UNIX", "TCP", "UDP", "RAW", "PING", "NETLINK", "PACKET", "INET", "UDPLITE")


def lsfd_kind(t):
    if t in KINDS:
        return KINDS[t]
    if any(t.startswith(s) for s in SOCK_TYPES):
        return "socket"
    return None  # anon inodes print their class; checked through AINODECLASS


def netns_of(pid):
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def lsfd_rows(args, pid, columns):
    """lsfd's rows with `columns`; when lsfd prints broken JSON for some column (it does for
    io_uring's memory-mapping rows), each column is asked alone and the rows are merged."""
    def ask(cols):
        out = subprocess.run([args.lsfd, "-J", "-p", str(pid), "-o", ",".join(cols)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            return None, out.stderr.strip()
        try:
            return json.loads(out.stdout)["lsfd"], None
        except ValueError as err:
            return None, f"lsfd printed invalid JSON ({err})"
    rows, err = ask(columns)
    if rows is not None:
        return rows, None
    merged = None
    for col in columns[1:]:
        part, _ = ask(["ASSOC", col])
        if part is None:
            continue
        if merged is None:
            merged = [dict(r) for r in part]
        else:
            for m, r in zip(merged, part):
                m.update(r)
    return (merged, None) if merged else (None, err)


# Factories that need ping sockets allowed: run in a network namespace of their own whose
# ping_group_range admits every group (the host's setting is left alone).
PING_WRAP = ["unshare", "-n", "sh", "-c",
             "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range && "
             "ip link set lo up 2>/dev/null; exec \"$0\" \"$@\""]


def run_factory(args, name, fds, params):
    cmd = [args.mkfds, name] + [str(f) for f in fds] + params
    if name in ("ping", "ping6") and os.geteuid() == 0:
        cmd = PING_WRAP + cmd
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line:
        err = p.stderr.read().strip().splitlines()
        p.wait()
        return None, (err[-1] if err else f"exit {p.returncode}")
    pids = [int(w) for w in line.split() if w.isdigit()]
    try:
        return compare(args, name, fds, pids[:1]), None
    finally:
        p.stdin.close()
        p.wait()


def compare(args, name, fds, pids):
    missing, wrong, fdset = [], [], []
    cols = checks()
    for pid in pids:
        columns = ["ASSOC", "TYPE", "AINODECLASS", "DELETED", "SOCK.NETNS", "INODE"] + list(cols)
        rows, err = lsfd_rows(args, pid, columns)
        if rows is None:
            return {"error": err}
        rows = [r for r in rows if str(r.get("assoc", "")).isdigit()]
        fd = subprocess.run([args.fdiff, "snapshot", "--pid", str(pid), "--format", "json"],
                            capture_output=True, text=True)
        if fd.returncode != 0:
            return {"error": fd.stderr.strip()}
        doc = json.loads(fd.stdout)
        snaps = doc if isinstance(doc, list) else doc.get("snapshots", [doc])
        ent = {e["fd"]: e for s in snaps for e in s["fds"]}
        own_ns = netns_of(pid)
        lsfd_fds = {int(r["assoc"]) for r in rows}
        if lsfd_fds != set(ent):
            fdset.append(f"fd sets differ: lsfd {sorted(lsfd_fds)} fdiff {sorted(ent)}")
        for r in rows:
            n = int(r["assoc"])
            e = ent.get(n)
            if e is None or n not in fds:
                continue  # only the factory's fds; stdio is the harness's
            want = lsfd_kind(str(r.get("type", "")))
            # nsfs files are regular files to stat; lsfd tells them by NS.TYPE.
            if r.get("ns.type"):
                want = "ns"
            if want and e.get("kind") != want:
                missing.append(f"fd {n} kind {want} (fdiff: {e.get('kind')})")
            for col, ok in cols.items():
                v = r.get(col.lower())
                if v is None or v == "" or v is False or v == []:
                    continue
                # lsfd prints the directions still open ("rw": nothing shut down); fdiff
                # prints the ones shut down, and nothing while both are open.
                if col == "SOCK.SHUTDOWN" and v in ("[--]", "??", "rw"):
                    continue
                if col == "UNIX.IPEER" and v == 0:
                    continue
                if col.endswith("RADDR") and (v.endswith(":0") or v in ("0.0.0.0", "::")):
                    continue
                if not ok(e, v):
                    what = "wrong" if has(e, col.split(".")[-1].lower()) else "missing"
                    (wrong if what == "wrong" else missing).append(f"fd {n} {col}={v!r}")
            if r.get("deleted") is True and not e.get("deleted"):
                missing.append(f"fd {n} DELETED")
            ns = r.get("sock.netns")
            if ns and own_ns and int(ns) != own_ns and e.get("netns") != int(ns):
                missing.append(f"fd {n} SOCK.NETNS={ns}")
    return {"missing": missing, "wrong": wrong, "fdset": fdset}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lsfd", required=True)
    ap.add_argument("--mkfds", required=True)
    ap.add_argument("--fdiff", default="target/release/fdiff")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    tot_m = tot_w = tot_f = 0
    skipped = []
    for name, fds, params in FACTORIES:
        res, err = run_factory(args, name, fds, params)
        label = " ".join([name] + params)
        if err or res is None:
            skipped.append(f"{label}: {err}")
            continue
        if "error" in res:
            skipped.append(f"{label}: {res['error']}")
            continue
        m, w, f = res["missing"], res["wrong"], res["fdset"]
        tot_m += len(m)
        tot_w += len(w)
        tot_f += len(f)
        status = "ok" if not (m or w or f) else f"{len(m)} missing, {len(w)} wrong"
        print(f"{label:50s} {status}")
        for x in m + w + f:
            print(f"    {x}")
    for s in skipped:
        print(f"skipped: {s}")
    print(f"TOTAL: {tot_m} missing, {tot_w} wrong, {tot_f} fd-set differences, "
          f"{len(skipped)} factories skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
