//! fdiff-core: the fdiff pipeline as a library, with no command line, terminal or table code.
//!
//! Data flows one way: a [`source`] (live /proc or a recording) yields [`snapshot`]s;
//! [`diff`] compares two; [`track`] keeps groups, series and the leak verdict. Rendering and
//! exit codes belong to the `fdiff` binary crate.
#![warn(missing_docs)]

pub mod diff;
pub mod error;
pub mod inputcheck;
pub mod json;
pub mod pipeline;
pub mod snapshot;
pub mod source;
pub mod track;
pub mod util;

pub use error::{Error, Result, Warning};
