//! fdiff's test and bench fixture: [`fixture`] is the process (run by the `fdiff-fixture`
//! example executable) that opens real fds of every kind on command; [`client`] starts one and
//! talks to it, for the integration tests and the bench alike.

pub mod client;
mod decode_kinds;
pub mod fixture;

pub use client::{Fixture, exe};
