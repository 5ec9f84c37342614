//! `fdiff._native`: the Python extension over fdiff-core. It exchanges the core's documented
//! JSON documents (`fdiff/snapshot/v1`, `fdiff/report/v1`, `fdiff/diff/v1`) with the Python
//! layer (python/fdiff), which wraps them into objects; so the objects are the CLI's schemas
//! exactly, and this crate stays a thin, typed shell around the core.
//!
//! Without the `python` feature (a plain `cargo build` at the workspace root) the crate is
//! empty and needs no Python at all.
#![cfg(feature = "python")]

mod native;
