//! The report's `stacks` section (additive to fdiff/report/v1): for each leaking group, the
//! stacks that opened its surviving fds, and those of its fds that were closed again.

use crate::snapshot::Kind;
use serde::{Deserialize, Serialize};

/// What `--stacks` captured over the watch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StacksReport {
    /// How capture was set up: `now` (from the start) or `leak` (armed per process once a
    /// group of it was judged leaking).
    pub arming: String,
    /// One entry per leaking group.
    pub groups: Vec<GroupStacks>,
    /// Opens captured in all.
    pub captured: u64,
    /// Opens not remembered: the fd map was full.
    pub dropped_fds: u64,
    /// Opens whose new stack found the stack store full.
    pub dropped_stacks: u64,
    /// Opens whose stack could not be read.
    pub unwind_failed: u64,
    /// Bytes the tracer's maps held at the end (fd map, stacks, address index).
    pub bytes: u64,
    /// What could not be captured as asked, once each (an interpreter whose frames cannot be
    /// read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The stacks of one leaking group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStacks {
    /// The process.
    pub pid: i32,
    /// The group's kind.
    pub kind: Kind,
    /// The group's key.
    pub key: String,
    /// Its fds open at the end.
    pub survivors: u64,
    /// Of those, how many have a captured stack.
    pub captured: u64,
    /// Distinct stacks of the survivors, most common first.
    pub survivor_stacks: Vec<StackCount>,
    /// Distinct stacks of the group's fds that were closed again and that differ from every
    /// survivor stack, most common first.
    pub closed_stacks: Vec<StackCount>,
    /// Why nothing was captured, when nothing was (past opens cannot be recovered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The process's pid in each pid namespace, outermost (the host's, [`Self::pid`]) first,
    /// when it is in a namespace of its own (a container): `NSpid` of /proc/PID/status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nspid: Option<Vec<i32>>,
}

/// A stack and how many fds it opened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StackCount {
    /// How many.
    pub count: u64,
    /// Threads that opened them (at most a few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tids: Vec<i32>,
    /// Innermost first.
    pub frames: Vec<StackFrame>,
}

/// One frame (also the type fdiff-stacks captures into).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackFrame {
    /// Function name (`?@0x…` when no symbol covers it).
    pub function: String,
    /// Bytes from its start.
    #[serde(default)]
    pub offset: u64,
    /// Source file, where debug info tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Source line, where debug info tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Binary or library file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Inlined into the next frame.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inlined: bool,
    /// A Python frame: `function` is the code's qualified name, `file` its co_filename.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub python: bool,
}

impl std::fmt::Display for StackFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.function)?;
        if self.inlined {
            write!(f, " (inlined)")?;
        } else if self.offset != 0 {
            write!(f, "+{:#x}", self.offset)?;
        }
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " at {file}:{line}")?,
            (Some(file), None) => write!(f, " at {file}")?,
            _ => {}
        }
        if let Some(m) = &self.module {
            write!(f, " [{m}]")?;
        }
        if self.python {
            write!(f, " [python]")?;
        }
        Ok(())
    }
}
