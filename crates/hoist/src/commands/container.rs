//! Finding containers by name or ID (the container commands build on this).

use anyhow::Result;
use hoist_core::Store;

/// A container of the store.
#[derive(Debug)]
pub struct Container;

impl Container {
    /// Writes the container's root filesystem as a flat tar.
    pub fn export(&self, _w: &mut dyn std::io::Write) -> Result<()> {
        anyhow::bail!("containers are not available yet")
    }
}

/// The container named or identified by `spec`, if any.
pub fn find(_store: &Store, _spec: &str) -> Result<Option<Container>> {
    Ok(None)
}
