//! The integration tests of `stablelane-storage`: one test binary (linked once), a module per area.

mod common;
mod crash;
mod journal;
mod model;
mod recovery;
