//! Operations on images: `export` and `import` (root filesystems), `analyze`, `squash` and
//! `diff` (what the layers do).

pub mod analyze;
pub mod diff;
pub mod export;
pub mod import;
pub mod squash;
