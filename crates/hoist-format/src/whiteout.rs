//! Whiteout naming rules of layer tars (OCI image-spec `layer.md`, moby `go-archive`).

/// Prefix that turns a file into a whiteout of its sibling.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Marker that makes its directory opaque (hides every lower-layer child).
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Prefix of AUFS metadata entries (`.wh..wh.plnk`, `.wh..wh..tmp`), never content.
pub const META_PREFIX: &str = ".wh..wh.";

/// What a layer entry's base name means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// An ordinary entry.
    None,
    /// `.wh.<name>`: deletes `<name>` of lower layers in the same directory.
    Remove(&'a str),
    /// `.wh..wh..opq`: hides every lower-layer entry below the directory.
    Opaque,
    /// Other AUFS metadata (`.wh..wh.plnk` …): skipped.
    Meta,
    /// `.wh.`, `.wh..`, `.wh...`: malformed names that moby refuses.
    Invalid,
}

/// Classifies the base name (last path component) of a layer entry.
pub fn classify(base: &str) -> Whiteout<'_> {
    if base == OPAQUE_MARKER {
        return Whiteout::Opaque;
    }
    if base.starts_with(META_PREFIX) {
        return Whiteout::Meta;
    }
    match base.strip_prefix(WHITEOUT_PREFIX) {
        None => Whiteout::None,
        Some("" | "." | "..") => Whiteout::Invalid,
        Some(name) => Whiteout::Remove(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for (name, want) in [
            ("foo", Whiteout::None),
            (".wh.foo", Whiteout::Remove("foo")),
            (".wh..wh..opq", Whiteout::Opaque),
            (".wh..wh.plnk", Whiteout::Meta),
            (".wh.", Whiteout::Invalid),
            (".wh..", Whiteout::Invalid),
            (".wh...", Whiteout::Invalid),
            (".wh.", Whiteout::Invalid),
            (".whfoo", Whiteout::None),
        ] {
            assert_eq!(classify(name), want, "{name}");
        }
    }
}
