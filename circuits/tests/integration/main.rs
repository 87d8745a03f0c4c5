//! The integration tests of `stablelane-circuits`: one test binary (linked once), a module per area.

mod attestation;
mod circomlib_vectors;
mod common;
mod generated_files;
mod tree_properties;
