//! Sources of snapshots: live /proc, or a recording read back. Both feed the same pipeline.

pub mod live;
pub mod procinfo;
