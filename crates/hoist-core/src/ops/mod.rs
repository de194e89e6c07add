//! Operations that turn images into root filesystems and back: `export` and `import`.

pub mod export;
pub mod import;
