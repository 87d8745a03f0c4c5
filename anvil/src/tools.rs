//! Locating the foundry binaries installed from npm.
//!
//! `npm ci` in the repository root installs foundry's platform packages
//! (`@foundry-rs/anvil-linux-amd64`, forge, cast), which carry the native binaries; we run
//! them directly, so stopping the process stops anvil itself.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The repository root (where `package.json` and `node_modules/` live).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Path of the native `anvil`: `$STABLELANE_ANVIL`, else the npm platform package, else
/// `anvil` on `PATH`.
pub fn anvil_binary() -> Result<PathBuf> {
    foundry_binary("anvil", "STABLELANE_ANVIL")
}

/// Path of the native `cast`: `$STABLELANE_CAST`, else the npm platform package, else `PATH`.
pub fn cast_binary() -> Result<PathBuf> {
    foundry_binary("cast", "STABLELANE_CAST")
}

fn foundry_binary(tool: &'static str, env: &'static str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Ok(PathBuf::from(path));
    }
    let scope = repo_root().join("node_modules").join("@foundry-rs");
    if let Ok(entries) = std::fs::read_dir(&scope) {
        let prefix = format!("{tool}-");
        let mut candidates: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path().join("bin").join(tool))
            .filter(|p| p.is_file())
            .collect();
        candidates.sort();
        if let Some(found) = candidates.into_iter().next() {
            return Ok(found);
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(tool);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(Error::ToolNotFound { tool, env })
}
