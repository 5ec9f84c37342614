//! A tiny FUSE server over /dev/fuse for issue 9 #1: it serves one file and can stop answering
//! GETATTR, the way a stalled FUSE or hung NFS mount never answers a stat.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const FUSE_LOOKUP: u32 = 1;
const FUSE_FORGET: u32 = 2;
const FUSE_GETATTR: u32 = 3;
const FUSE_OPEN: u32 = 14;
const FUSE_RELEASE: u32 = 18;
const FUSE_FLUSH: u32 = 25;
const FUSE_INIT: u32 = 26;
const FUSE_INTERRUPT: u32 = 36;
const FUSE_BATCH_FORGET: u32 = 42;

const ROOT: u64 = 1;
const FILE_NODE: u64 = 2;
pub const FILE_NAME: &str = "stalled.dat";
const FILE_SIZE: u64 = 4242;

/// GETATTRs held unanswered while stalled, by request id.
struct Stall {
    on: bool,
    held: Vec<u64>,
}

pub struct FuseMount {
    pub dir: PathBuf,
    dev: Arc<OwnedFd>,
    stall: Arc<Mutex<Stall>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl FuseMount {
    /// Mount a FUSE file system serving one file; `Err` says why this machine cannot.
    pub fn mount() -> Result<FuseMount, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".to_owned());
        }
        let dev = File::options()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .map_err(|e| format!("cannot open /dev/fuse: {e}"))?;
        let dev: OwnedFd = dev.into();
        let dir = std::env::temp_dir().join(format!(
            "fdiff-fuse-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let opts = format!("fd={},rootmode=40000,user_id=0,group_id=0", dev.as_raw_fd());
        let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
        let target = c(&dir.to_string_lossy());
        let (src, fstype, data) = (c("fdiff-test"), c("fuse"), c(&opts));
        // SAFETY: every pointer is a valid NUL-terminated string for the call's duration.
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                data.as_ptr().cast(),
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            let _ = std::fs::remove_dir(&dir);
            return Err(format!("mount fuse: {e}"));
        }
        let dev = Arc::new(dev);
        let stall = Arc::new(Mutex::new(Stall {
            on: false,
            held: Vec::new(),
        }));
        let (tx, done) = channel();
        {
            let (dev, stall) = (dev.clone(), stall.clone());
            thread::spawn(move || {
                serve(&dev, &stall);
                let _ = tx.send(());
            });
        }
        Ok(FuseMount {
            dir,
            dev,
            stall,
            done,
        })
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// From now on GETATTR goes unanswered.
    pub fn stall(&self) {
        self.stall.lock().expect("stall lock").on = true;
    }

    /// GETATTRs waiting for an answer.
    pub fn held(&self) -> usize {
        self.stall.lock().expect("stall lock").held.len()
    }

    /// Answer the held GETATTRs and every later one.
    pub fn unstall(&self) {
        let mut s = self.stall.lock().expect("stall lock");
        s.on = false;
        for unique in std::mem::take(&mut s.held) {
            let _ = reply(&self.dev, unique, 0, &attr_out());
        }
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        self.unstall();
        let c = std::ffi::CString::new(self.dir.to_string_lossy().as_bytes()).expect("no NUL");
        // SAFETY: a valid path string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        // The server ends when the connection goes with the last reference to the mount;
        // a test that still holds the file must not hang here.
        let _ = self.done.recv_timeout(Duration::from_secs(5));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn serve(dev: &OwnedFd, stall: &Mutex<Stall>) {
    let mut buf = vec![0u8; 1 << 17];
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::read(dev.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) | Some(libc::ENOENT) | Some(libc::EAGAIN) => continue,
                _ => return,
            }
        }
        let req = &buf[..n as usize];
        if req.len() < 40 {
            return;
        }
        let opcode = u32::from_ne_bytes(req[4..8].try_into().expect("4 bytes"));
        let unique = u64::from_ne_bytes(req[8..16].try_into().expect("8 bytes"));
        let nodeid = u64::from_ne_bytes(req[16..24].try_into().expect("8 bytes"));
        let body = &req[40..];
        let res = match opcode {
            FUSE_INIT => reply(dev, unique, 0, &init_out()),
            FUSE_LOOKUP => {
                let name = body.split(|&b| b == 0).next().unwrap_or(b"");
                if nodeid == ROOT && name == FILE_NAME.as_bytes() {
                    reply(dev, unique, 0, &entry_out())
                } else {
                    reply(dev, unique, -libc::ENOENT, &[])
                }
            }
            FUSE_GETATTR => {
                let mut s = stall.lock().expect("stall lock");
                if s.on {
                    s.held.push(unique);
                    Ok(())
                } else if nodeid == ROOT {
                    reply(dev, unique, 0, &root_attr_out())
                } else {
                    reply(dev, unique, 0, &attr_out())
                }
            }
            FUSE_OPEN => reply(dev, unique, 0, &[0u8; 16]),
            FUSE_FLUSH | FUSE_RELEASE => reply(dev, unique, 0, &[]),
            FUSE_FORGET | FUSE_BATCH_FORGET | FUSE_INTERRUPT => Ok(()),
            _ => reply(dev, unique, -libc::ENOSYS, &[]),
        };
        if res.is_err() {
            // ENOENT: the request was interrupted meanwhile; anything else ends the server.
            if io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT) {
                return;
            }
        }
    }
}

fn reply(dev: &OwnedFd, unique: u64, error: i32, body: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&error.to_ne_bytes());
    out.extend_from_slice(&unique.to_ne_bytes());
    out.extend_from_slice(body);
    // SAFETY: out is valid for reads of its length.
    let n = unsafe { libc::write(dev.as_raw_fd(), out.as_ptr().cast(), out.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn init_out() -> Vec<u8> {
    let mut o = Vec::with_capacity(64);
    o.extend_from_slice(&7u32.to_ne_bytes()); // major
    o.extend_from_slice(&31u32.to_ne_bytes()); // minor
    o.extend_from_slice(&0u32.to_ne_bytes()); // max_readahead
    o.extend_from_slice(&0u32.to_ne_bytes()); // flags
    o.extend_from_slice(&1u16.to_ne_bytes()); // max_background
    o.extend_from_slice(&1u16.to_ne_bytes()); // congestion_threshold
    o.extend_from_slice(&4096u32.to_ne_bytes()); // max_write
    o.extend_from_slice(&1u32.to_ne_bytes()); // time_gran
    o.resize(64, 0);
    o
}

/// fuse_attr; no caching (valid 0) so any plain stat goes to the server.
fn attr(ino: u64, mode: u32, size: u64, nlink: u32) -> Vec<u8> {
    let mut a = Vec::with_capacity(88);
    a.extend_from_slice(&ino.to_ne_bytes());
    a.extend_from_slice(&size.to_ne_bytes());
    a.extend_from_slice(&1u64.to_ne_bytes()); // blocks
    for _ in 0..3 {
        a.extend_from_slice(&1_700_000_000u64.to_ne_bytes()); // a/m/ctime
    }
    for _ in 0..3 {
        a.extend_from_slice(&0u32.to_ne_bytes());
    }
    a.extend_from_slice(&mode.to_ne_bytes());
    a.extend_from_slice(&nlink.to_ne_bytes());
    a.extend_from_slice(&0u32.to_ne_bytes()); // uid
    a.extend_from_slice(&0u32.to_ne_bytes()); // gid
    a.extend_from_slice(&0u32.to_ne_bytes()); // rdev
    a.extend_from_slice(&4096u32.to_ne_bytes()); // blksize
    a.extend_from_slice(&0u32.to_ne_bytes()); // flags
    a
}

fn file_attr() -> Vec<u8> {
    attr(FILE_NODE, 0o100644, FILE_SIZE, 1)
}

fn entry_out() -> Vec<u8> {
    let mut o = Vec::with_capacity(128);
    o.extend_from_slice(&FILE_NODE.to_ne_bytes());
    o.extend_from_slice(&0u64.to_ne_bytes()); // generation
    o.extend_from_slice(&0u64.to_ne_bytes()); // entry_valid
    o.extend_from_slice(&0u64.to_ne_bytes()); // attr_valid
    o.extend_from_slice(&0u32.to_ne_bytes());
    o.extend_from_slice(&0u32.to_ne_bytes());
    o.extend_from_slice(&file_attr());
    o
}

fn attr_out() -> Vec<u8> {
    let mut o = vec![0u8; 16]; // attr_valid, attr_valid_nsec, dummy
    o.extend_from_slice(&file_attr());
    o
}

fn root_attr_out() -> Vec<u8> {
    let mut o = vec![0u8; 16];
    o.extend_from_slice(&attr(ROOT, 0o040755, 0, 2));
    o
}

/// A `sleep` holding the served file as its stdin.
pub fn holder(file: &Path) -> std::process::Child {
    let f = File::open(file).expect("open the FUSE file");
    std::process::Command::new("sleep")
        .arg("60")
        .stdin(f)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn sleep")
}

/// A plain stat through /proc/PID/fd/0 on another thread; returns whether it has finished.
pub fn plain_stat_in_background(pid: u32) -> Arc<std::sync::atomic::AtomicBool> {
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = finished.clone();
    thread::spawn(move || {
        let _ = std::fs::metadata(format!("/proc/{pid}/fd/0"));
        f.store(true, Ordering::SeqCst);
    });
    finished
}
