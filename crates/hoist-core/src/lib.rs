//! hoist core.
