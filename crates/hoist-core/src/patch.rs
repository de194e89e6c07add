//! Binary layer deltas: a layer sent as a zstd patch against a similar layer the other side
//! already has, and the choice of that reference layer.
//!
//! A patch is one zstd frame of the new layer (its uncompressed tar, the *target*) compressed
//! with the reference layer (an uncompressed tar too) as a *prefix*, as `zstd --patch-from`
//! does: the compressor works as if the reference came just before the target, so whatever the
//! two layers share becomes a back-reference of a few bytes. Long-distance matching finds those
//! matches across the whole reference, and the window is set large enough for every target
//! byte to reach every reference byte ([`window_log`]). A file changed inside a big layer thus
//! costs about its own compressed size.
//!
//! ```text
//!   make:   reference.tar ──(prefix)──┐
//!           target.tar ───────────────┴─> zstd (LDM, window ≥ reference + target) ─> patch
//!   apply:  reference.tar ──(prefix)──┐
//!           patch ────────────────────┴─> zstd (window checked first) ─> target.tar
//! ```
//!
//! **Memory.** zstd takes the prefix as one contiguous buffer and hoist has no `unsafe` (so no
//! mmap): the reference is read whole into memory on both sides, up to
//! [`MAX_REFERENCE_SIZE`]. On top of it, zstd keeps up to one window of the target (the
//! compressor its input, the decoder its output; both buffers are touched only as they fill),
//! and the window must reach back over the whole reference, so peak memory is about the
//! reference plus the target on both sides. Measured (bench/patch, 3 runs) on a 502 MiB layer:
//! 1,072 MiB to make a patch, 1,007 MiB to apply it (the zstd CLI's `--patch-from`: 1,544 and
//! 1,008 MiB).
//!
//! **Checks.** The patch's frame header is read before anything is decoded: its window must be
//! one that a patch against a reference of this size can have, so a hostile patch cannot make
//! the decoder reserve more than that. The frame carries zstd's content checksum, so a wrong
//! reference is mostly caught while decoding; the caller still compares the returned sha256
//! with the layer's diff_id, which is the proof.
//!
//! [`choose_reference`] picks, for each new layer, the base layer to patch against: same
//! history step at the same position, else the same `created_by`, else the closest size.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Write};
use std::path::Path;

use hoist_format::Digest;
use hoist_format::delta::{InventoryImage, InventoryLayer};

use crate::compress::{IO_BUF_SIZE, read_full};
use crate::hashio::{CountingWriter, HashingReader, HashingWriter};

/// zstd's largest window log: `ZSTD_WINDOWLOG_MAX` (31 on 64-bit, 30 on 32-bit, where a 2 GiB
/// buffer cannot be addressed). Neither the compressor nor the decoder goes past it.
pub const MAX_WINDOW_LOG: u32 = if usize::BITS >= 64 { 31 } else { 30 };

/// zstd's smallest window log (`ZSTD_WINDOWLOG_MIN`).
const MIN_WINDOW_LOG: u32 = 10;

/// The largest reference layer: one window (2 GiB on 64-bit). A match reaches at most one
/// window back, and in a rebuilt layer the same file sits about one reference size back, so
/// past this the start of the reference is out of reach. The reference is also held whole in
/// memory while a patch is made or applied, so this is the memory it may take. Larger
/// references give [`PatchError::ReferenceTooBig`]: send the whole layer.
pub const MAX_REFERENCE_SIZE: u64 = 1 << MAX_WINDOW_LOG;

/// zstd level of patches: zstd's default. Measured with bench/patch (a 100 MiB layer, one
/// 1 MiB file of new random bytes): levels 1, 3 and 9 give the same patch within 0.5% (the
/// changed file; long-distance matching finds the rest at any level), 9 takes 1.8× as long
/// and 19 46×; 3 compresses new text better than 1 for the same time.
pub const PATCH_ZSTD_LEVEL: i32 = 3;

/// The similar-size rule of [`choose_reference`] pairs layers whose uncompressed sizes are
/// within this factor. A patch can reuse at most the smaller layer's bytes, so past 2× at least
/// half of the larger one is new (or was deleted); two unrelated steps are then the likelier
/// story, and a wrong guess costs compressing the layer once for nothing.
pub const MAX_SIZE_RATIO: u64 = 2;

/// The page size the pre-faulting thread of [`Reference::read`] steps by: 4 KiB, the smallest
/// on every platform (a larger real page is only touched more than once).
const PAGE: usize = 4096;

/// Below this a reference is read by one thread: a thread costs more than the faults it
/// takes over.
const PREFAULT_MIN: usize = 16 << 20;

/// zstd's frame magic number, little-endian (`ZSTD_MAGICNUMBER`).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The longest zstd frame header (`ZSTD_FRAMEHEADERSIZE_MAX`): magic, descriptor, window,
/// dictionary ID and content size.
const FRAME_HEADER_MAX: usize = 18;

/// Why a patch cannot be made or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The reference is larger than zstd can reach: send the whole layer instead.
    #[error(
        "reference layer {reference}: {size} bytes, more than the {limit} bytes a zstd patch can refer to"
    )]
    ReferenceTooBig {
        /// The reference (path or what the caller named it).
        reference: String,
        /// Its size.
        size: u64,
        /// [`MAX_REFERENCE_SIZE`].
        limit: u64,
    },
    /// The reference cannot be read.
    #[error("reference layer {reference}: {source}")]
    Reference {
        /// The reference.
        reference: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The reference has another size than it was said (or found) to have.
    #[error("reference layer {reference}: expected {expected} bytes, found {found}")]
    ReferenceSize {
        /// The reference.
        reference: String,
        /// The declared size.
        expected: u64,
        /// The bytes there were (at most `expected` + 1: reading stops there).
        found: u64,
    },
    /// The reference does not fit in memory.
    #[error("reference layer {reference}: cannot hold its {size} bytes in memory")]
    ReferenceMemory {
        /// The reference.
        reference: String,
        /// Its size.
        size: u64,
    },
    /// The new layer cannot be read.
    #[error("reading the layer to patch: {0}")]
    ReadTarget(#[source] io::Error),
    /// The new layer has another size than [`PatchOptions::target_size`].
    #[error("the layer to patch has {found} bytes, not the {expected} announced")]
    TargetSize {
        /// The announced size.
        expected: u64,
        /// The bytes read (at most `expected` + one read when it is longer).
        found: u64,
    },
    /// The patch grew past [`PatchOptions::max_size`]: send the whole layer instead.
    #[error("the patch is larger than {limit} bytes")]
    NotSmaller {
        /// The limit.
        limit: u64,
    },
    /// Compressing or writing the patch failed.
    #[error("writing the patch: {0}")]
    WritePatch(#[source] io::Error),
    /// The patch does not start with a zstd frame header hoist accepts.
    #[error("patch: not a zstd frame: {0}")]
    NotAPatch(String),
    /// The patch's frame header claims a window no patch against this reference needs.
    #[error(
        "patch: its zstd window of {window} bytes is larger than the {limit} bytes a patch against a reference of {reference_size} bytes can need"
    )]
    WindowTooLarge {
        /// The window the header claims.
        window: u64,
        /// The largest window allowed.
        limit: u64,
        /// The reference's size.
        reference_size: u64,
    },
    /// The patch ends inside its zstd frame.
    #[error("patch: truncated (its zstd frame is incomplete)")]
    Truncated,
    /// The patch cannot be read or decoded (corrupt, or made against another reference).
    #[error("patch: {0}")]
    Decode(#[source] io::Error),
    /// Bytes follow the patch's zstd frame.
    #[error("patch: data after the end of its zstd frame")]
    TrailingData,
    /// The patch rebuilds a layer of another size than expected.
    #[error("patch: it rebuilds {found} bytes, not the expected {expected}")]
    LayerSize {
        /// The expected size.
        expected: u64,
        /// The size the patch declares or rebuilt.
        found: u64,
    },
    /// The patch rebuilds more than the expected size (decoding stopped there).
    #[error("patch: it rebuilds more than the expected {expected} bytes")]
    LayerTooLong {
        /// The expected size.
        expected: u64,
    },
    /// The rebuilt layer cannot be written.
    #[error("writing the rebuilt layer: {0}")]
    WriteLayer(#[source] io::Error),
}

/// How to make a patch.
#[derive(Debug, Clone)]
pub struct PatchOptions {
    /// zstd level ([`PATCH_ZSTD_LEVEL`] by default).
    pub level: i32,
    /// The target's size, when known: zstd records it in the frame (the decoder then knows the
    /// exact output size) and the window is sized for it. A target of another size is an
    /// error ([`PatchError::TargetSize`]).
    pub target_size: Option<u64>,
    /// Give up with [`PatchError::NotSmaller`] as soon as the patch is larger than this (the
    /// size of the layer blob it replaces): `out` then holds a partial patch to discard.
    pub max_size: Option<u64>,
}

impl Default for PatchOptions {
    fn default() -> Self {
        PatchOptions {
            level: PATCH_ZSTD_LEVEL,
            target_size: None,
            max_size: None,
        }
    }
}

/// What [`make_patch`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchStats {
    /// sha256 of the target: its diff_id.
    pub target_digest: Digest,
    /// Bytes of the target.
    pub target_size: u64,
    /// sha256 of the patch.
    pub patch_digest: Digest,
    /// Bytes of the patch.
    pub patch_size: u64,
    /// The zstd window log used ([`window_log`]).
    pub window_log: u32,
}

/// The zstd window log of a patch against a reference of `reference_size` bytes: the smallest
/// window that holds reference and target together, so every target byte can refer to every
/// reference byte; an unknown target is taken to be as large as the reference (a rebuilt
/// layer). zstd's `--patch-from` takes the power of two above the larger of the two instead,
/// which a target grown past that power overruns (its start no longer reaches the reference's
/// start); this costs at most twice the window, and zstd's buffers are touched only as they
/// fill. Clamped to zstd's limits ([`MAX_WINDOW_LOG`]). The decoder allows exactly this
/// window, from the content size the frame header declares.
pub fn window_log(reference_size: u64, target_size: Option<u64>) -> u32 {
    let span = reference_size.saturating_add(target_size.unwrap_or(reference_size));
    let log = match span {
        0 | 1 => 0,
        n => u64::BITS - (n - 1).leading_zeros(),
    };
    log.clamp(MIN_WINDOW_LOG, MAX_WINDOW_LOG)
}

/// A reference layer (uncompressed tar) held in memory, to make or apply several patches
/// against it without reading it again.
pub struct Reference {
    bytes: Vec<u8>,
    name: String,
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reference")
            .field("name", &self.name)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Reference {
    /// Reads the reference layer at `path`. A file larger than [`MAX_REFERENCE_SIZE`] is
    /// refused from its size alone, before a byte is read.
    pub fn open(path: &Path) -> Result<Self, PatchError> {
        let name = path.display().to_string();
        let io_err = |source| PatchError::Reference {
            reference: name.clone(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let size = file.metadata().map_err(io_err)?.len();
        Self::read(file, size, name)
    }

    /// Reads a reference layer of `size` bytes from `r` (a decompressing reader of a layer in
    /// the store, say); `name` names it in errors. A `size` over [`MAX_REFERENCE_SIZE`] is
    /// refused before reading; a stream of another length than `size` is an error.
    pub fn read(r: impl Read, size: u64, name: impl Into<String>) -> Result<Self, PatchError> {
        let name = name.into();
        if size > MAX_REFERENCE_SIZE {
            return Err(PatchError::ReferenceTooBig {
                reference: name,
                size,
                limit: MAX_REFERENCE_SIZE,
            });
        }
        // Within MAX_REFERENCE_SIZE, so it fits a usize on every platform zstd supports.
        let want = usize::try_from(size).expect("MAX_REFERENCE_SIZE fits a usize");
        // Asked first so that a reference too big for memory is an error, not an abort.
        if Vec::<u8>::new().try_reserve_exact(want).is_err() {
            return Err(PatchError::ReferenceMemory {
                reference: name,
                size,
            });
        }
        // Zeroed memory comes as fresh pages nothing has touched yet; touching them (one fault
        // each) is most of what reading a big reference costs. A second thread takes the
        // faults of the second half while this one reads into the first.
        let mut bytes = vec![0u8; want];
        let mut r = r;
        let io_err = |source| PatchError::Reference {
            reference: name.clone(),
            source,
        };
        let short = |found: usize| PatchError::ReferenceSize {
            reference: name.clone(),
            expected: size,
            found: found as u64,
        };
        let (first, second) = bytes.split_at_mut(want / 2);
        let got_first = std::thread::scope(|s| {
            if second.len() >= PREFAULT_MIN {
                s.spawn(|| {
                    for page in second.chunks_mut(PAGE) {
                        page[0] = 0;
                    }
                });
            }
            read_full(&mut r, first)
        })
        .map_err(io_err)?;
        if got_first < first.len() {
            return Err(short(got_first));
        }
        let got_second = read_full(&mut r, second).map_err(io_err)?;
        if got_second < second.len() {
            return Err(short(got_first + got_second));
        }
        // One byte more than announced tells a longer stream from an exact one.
        if read_full(&mut r, &mut [0u8; 1]).map_err(io_err)? != 0 {
            return Err(PatchError::ReferenceSize {
                reference: name,
                expected: size,
                found: size + 1,
            });
        }
        Ok(Reference { bytes, name })
    }

    /// Bytes of the reference.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// True for an empty reference.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// What errors call this reference.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes to `out` a patch that rebuilds `target` from this reference. See [`make_patch`].
    pub fn make_patch(
        &self,
        target: impl Read,
        out: impl Write,
        opts: &PatchOptions,
    ) -> Result<PatchStats, PatchError> {
        let log = window_log(self.len(), opts.target_size);
        let mut enc = zstd::stream::write::Encoder::with_ref_prefix(
            HashingWriter::new(out),
            opts.level,
            &self.bytes,
        )
        .map_err(PatchError::WritePatch)?;
        enc.window_log(log).map_err(PatchError::WritePatch)?;
        enc.long_distance_matching(true)
            .map_err(PatchError::WritePatch)?;
        // Tells a wrong reference while decoding, for 4 bytes.
        enc.include_checksum(true).map_err(PatchError::WritePatch)?;
        enc.set_pledged_src_size(opts.target_size)
            .map_err(PatchError::WritePatch)?;
        let mut target = HashingReader::new(target);
        let mut buf = vec![0u8; IO_BUF_SIZE];
        let too_big = |written: u64| match opts.max_size {
            Some(limit) if written > limit => Err(PatchError::NotSmaller { limit }),
            _ => Ok(()),
        };
        loop {
            let n = match target.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(PatchError::ReadTarget(e)),
            };
            if let Some(expected) = opts.target_size
                && target.count() > expected
            {
                return Err(PatchError::TargetSize {
                    expected,
                    found: target.count(),
                });
            }
            enc.write_all(&buf[..n]).map_err(PatchError::WritePatch)?;
            too_big(enc.get_ref().count())?;
        }
        if let Some(expected) = opts.target_size
            && target.count() != expected
        {
            return Err(PatchError::TargetSize {
                expected,
                found: target.count(),
            });
        }
        let mut sink = enc.finish().map_err(PatchError::WritePatch)?;
        sink.flush().map_err(PatchError::WritePatch)?;
        let (patch_digest, patch_size, _) = sink.finish();
        too_big(patch_size)?;
        let (target_digest, target_size, _) = target.finish();
        Ok(PatchStats {
            target_digest,
            target_size,
            patch_digest,
            patch_size,
            window_log: log,
        })
    }

    /// Rebuilds into `out` the layer `patch` was made from. See [`apply_patch`]. With
    /// `expected_size` (the layer's size, when the caller knows it), a patch that declares
    /// another size is refused before decoding, and one that rebuilds more stops there: a
    /// small hostile patch cannot fill the disk.
    pub fn apply_patch(
        &self,
        patch: impl Read,
        out: impl Write,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64), PatchError> {
        let mut out = HashingWriter::new(out);
        self.apply_patch_unhashed(patch, &mut out, expected_size)?;
        let (digest, size, _) = out.finish();
        Ok((digest, size))
    }

    /// [`Reference::apply_patch`] for a writer that hashes what it is given itself (a staged
    /// blob): returns the layer's size only, so the rebuilt layer is hashed once, not twice.
    pub fn apply_patch_unhashed(
        &self,
        mut patch: impl Read,
        out: impl Write,
        expected_size: Option<u64>,
    ) -> Result<u64, PatchError> {
        let head = read_head(&mut patch).map_err(PatchError::Decode)?;
        let header = FrameHeader::parse(&head).map_err(PatchError::NotAPatch)?;
        if let (Some(expected), Some(found)) = (expected_size, header.content_size)
            && expected != found
        {
            return Err(PatchError::LayerSize { expected, found });
        }
        let log = window_log(self.len(), header.content_size);
        let limit = 1u64 << log;
        if header.window_size > limit {
            return Err(PatchError::WindowTooLarge {
                window: header.window_size,
                limit,
                reference_size: self.len(),
            });
        }
        let input = BufReader::with_capacity(IO_BUF_SIZE, Cursor::new(head).chain(patch));
        let mut dec = zstd::stream::read::Decoder::with_ref_prefix(input, &self.bytes)
            .map_err(PatchError::Decode)?
            .single_frame();
        dec.window_log_max(log).map_err(PatchError::Decode)?;
        let decode_err = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => PatchError::Truncated,
            _ => PatchError::Decode(e),
        };
        let mut out = CountingWriter::new(out);
        let mut buf = vec![0u8; IO_BUF_SIZE];
        loop {
            let n = match dec.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(decode_err(e)),
            };
            if let Some(expected) = expected_size
                && out.count() + n as u64 > expected
            {
                return Err(PatchError::LayerTooLong { expected });
            }
            out.write_all(&buf[..n]).map_err(PatchError::WriteLayer)?;
        }
        if let Some(expected) = expected_size
            && out.count() != expected
        {
            return Err(PatchError::LayerSize {
                expected,
                found: out.count(),
            });
        }
        let mut rest = dec.finish();
        if rest.read(&mut [0u8]).map_err(PatchError::Decode)? != 0 {
            return Err(PatchError::TrailingData);
        }
        out.flush().map_err(PatchError::WriteLayer)?;
        Ok(out.count())
    }
}

/// Writes to `out` a zstd patch that rebuilds `target` (a new layer, uncompressed) from the
/// layer at `reference` (a base layer, uncompressed), streaming `target` through. Returns the
/// target's sha256 (its diff_id) and size and the patch's sha256 and size. A reference over
/// [`MAX_REFERENCE_SIZE`] gives [`PatchError::ReferenceTooBig`] without being read: send the
/// whole layer then, as when the patch is not smaller than the layer.
pub fn make_patch(
    reference: &Path,
    target: impl Read,
    out: impl Write,
    opts: &PatchOptions,
) -> Result<PatchStats, PatchError> {
    Reference::open(reference)?.make_patch(target, out, opts)
}

/// Writes to `out` the layer that `patch` rebuilds from the layer at `reference`, and returns
/// its sha256 and size: the caller compares them with the layer's diff_id (and size), the only
/// proof that the reference was the right one. [`Reference::apply_patch`] also takes the
/// expected size, to stop a patch that rebuilds more.
pub fn apply_patch(
    reference: &Path,
    patch: impl Read,
    out: impl Write,
) -> Result<(Digest, u64), PatchError> {
    Reference::open(reference)?.apply_patch(patch, out, None)
}

/// Reads up to [`FRAME_HEADER_MAX`] bytes (fewer only at the end of the stream).
fn read_head(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(FRAME_HEADER_MAX);
    r.take(FRAME_HEADER_MAX as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// What hoist reads of a zstd frame header (RFC 8878 §3.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHeader {
    /// The window the decoder must keep.
    window_size: u64,
    /// The decompressed size, when the frame declares it.
    content_size: Option<u64>,
}

impl FrameHeader {
    /// Parses the header at the start of `head`.
    fn parse(head: &[u8]) -> Result<Self, String> {
        if head.len() < ZSTD_MAGIC.len() || head[..ZSTD_MAGIC.len()] != ZSTD_MAGIC {
            return Err("it does not start with zstd's magic number".into());
        }
        let short = || format!("its header is cut short after {} bytes", head.len());
        let descriptor = *head.get(4).ok_or_else(short)?;
        if descriptor & 0x08 != 0 {
            return Err("its header has the reserved bit set".into());
        }
        let single_segment = descriptor & 0x20 != 0;
        let dict_id_len = [0, 1, 2, 4][usize::from(descriptor & 0x03)];
        let content_size_len = match descriptor >> 6 {
            0 if single_segment => 1,
            0 => 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let mut pos = 5;
        let window_size = if single_segment {
            None
        } else {
            let w = *head.get(pos).ok_or_else(short)?;
            pos += 1;
            let base = 1u64 << (MIN_WINDOW_LOG + u32::from(w >> 3));
            Some(base + base / 8 * u64::from(w & 0x07))
        };
        pos += dict_id_len;
        let field = head
            .get(pos..pos + content_size_len)
            .ok_or_else(short)?
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let content_size = match content_size_len {
            0 => None,
            // The 2-byte field is offset by 256 (sizes below 256 use the 1-byte form).
            2 => Some(field + 256),
            _ => Some(field),
        };
        Ok(FrameHeader {
            window_size: window_size.or(content_size).ok_or_else(short)?,
            content_size,
        })
    }
}

/// What [`choose_reference`] knows of a layer: what an inventory says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSummary<'a> {
    /// sha256 of the uncompressed layer.
    pub diff_id: &'a Digest,
    /// Bytes of the uncompressed layer, when known.
    pub size: Option<u64>,
    /// `created_by` of the history step that made the layer, when known.
    pub created_by: Option<&'a str>,
}

impl<'a> From<&'a InventoryLayer> for LayerSummary<'a> {
    fn from(l: &'a InventoryLayer) -> Self {
        LayerSummary {
            diff_id: &l.diff_id,
            size: l.diff_size,
            created_by: l.created_by.as_deref(),
        }
    }
}

impl<'a> LayerSummary<'a> {
    /// The layers of an inventory image, base first.
    pub fn of_image(image: &'a InventoryImage) -> Vec<Self> {
        image.layers.iter().map(Self::from).collect()
    }

    /// `created_by`, when it says something.
    fn step(&self) -> Option<&'a str> {
        self.created_by.filter(|s| !s.is_empty())
    }
}

/// Why [`choose_reference`] picked a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The base layer at the same position was made by the same history step.
    SamePosition,
    /// A base layer elsewhere was made by the same history step (the closest in size of them).
    SameCreatedBy,
    /// The base layer closest in size, within [`MAX_SIZE_RATIO`].
    SimilarSize,
}

/// What to send for one layer of the target image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The base has this layer (same diff_id): nothing to send.
    InBase {
        /// Index of the base image.
        image: usize,
        /// Index of the layer in it.
        layer: usize,
    },
    /// Send a patch against this base layer (or the whole layer if the patch is not smaller).
    Patch {
        /// Index of the base image.
        image: usize,
        /// Index of the layer in it.
        layer: usize,
        /// Which rule chose it.
        reason: Reason,
    },
    /// No base layer is similar: send the whole layer.
    Whole,
}

/// For each layer of `target` (base first), what to send given the base images' layers
/// (`bases`, in the order the user named them; each base first). A layer whose diff_id a base
/// has is [`Pick::InBase`]. Any other is patched against, in this order of preference:
/// 1. the layer at the same position of a base image, when both have the same non-empty
///    history `created_by` (a rebuilt step of the same Dockerfile);
/// 2. a base layer with the same `created_by` elsewhere, the closest in size if several;
/// 3. the base layer closest in size, if within [`MAX_SIZE_RATIO`] (a rebuilt step whose
///    `created_by` embeds a content hash, like the classic builder's `COPY file:<sha256>`).
///
/// Base layers known to be over [`MAX_REFERENCE_SIZE`] never serve as references (one of
/// unknown size may: [`make_patch`] then refuses it if it is). An unknown size is the farthest
/// from any, and rule 3 needs both sizes. Ties go to the first base image, then the lowest
/// layer, so the choice is deterministic.
pub fn choose_reference<'a, B: AsRef<[LayerSummary<'a>]>>(
    target: &[LayerSummary<'_>],
    bases: &[B],
) -> Vec<Pick> {
    let all = || {
        bases.iter().enumerate().flat_map(|(image, b)| {
            b.as_ref()
                .iter()
                .enumerate()
                .map(move |(layer, summary)| (image, layer, summary))
        })
    };
    let usable = |l: &LayerSummary<'_>| l.size.is_none_or(|s| s <= MAX_REFERENCE_SIZE);
    target
        .iter()
        .enumerate()
        .map(|(position, t)| {
            if let Some((image, layer, _)) = all().find(|(_, _, b)| b.diff_id == t.diff_id) {
                return Pick::InBase { image, layer };
            }
            let patch =
                |(image, layer, _): (usize, usize, &LayerSummary<'_>), reason| Pick::Patch {
                    image,
                    layer,
                    reason,
                };
            if let Some(step) = t.step() {
                let same_position = bases.iter().enumerate().find_map(|(image, b)| {
                    b.as_ref()
                        .get(position)
                        .filter(|b| b.step() == Some(step) && usable(b))
                        .map(|b| (image, position, b))
                });
                if let Some(found) = same_position {
                    return patch(found, Reason::SamePosition);
                }
                let same_step = all()
                    .filter(|(_, _, b)| b.step() == Some(step) && usable(b))
                    .min_by(|x, y| size_distance(t.size, x.2.size, y.2.size));
                if let Some(found) = same_step {
                    return patch(found, Reason::SameCreatedBy);
                }
            }
            all()
                .filter(|(_, _, b)| usable(b) && within_ratio(t.size, b.size))
                .min_by(|x, y| size_distance(t.size, x.2.size, y.2.size))
                .map_or(Pick::Whole, |found| patch(found, Reason::SimilarSize))
        })
        .collect()
}

/// True when `a` and `b` are both known, non-zero and within [`MAX_SIZE_RATIO`] of each other.
fn within_ratio(a: Option<u64>, b: Option<u64>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return false;
    };
    let (small, large) = (a.min(b), a.max(b));
    small > 0 && u128::from(large) <= u128::from(small) * u128::from(MAX_SIZE_RATIO)
}

/// Orders `x` and `y` by how close their size is to `t` as a ratio (larger ÷ smaller, compared
/// exactly); an unknown or zero size (on either side) is the farthest.
fn size_distance(t: Option<u64>, x: Option<u64>, y: Option<u64>) -> std::cmp::Ordering {
    // (large, small) of each pair, None when the ratio is undefined; large_x/small_x orders
    // as large_x*small_y against large_y*small_x.
    let pair = |s: Option<u64>| {
        let (t, s) = (t?, s?);
        (t.min(s) > 0).then(|| (u128::from(t.max(s)), u128::from(t.min(s))))
    };
    match (pair(x), pair(y)) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some((lx, sx)), Some((ly, sy))) => (lx * sy).cmp(&(ly * sx)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic incompressible bytes (xorshift64*), `n` of them, from `seed`.
    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(n);
        out
    }

    /// A layer tar of `files` (name, content) with fixed metadata, built by the `tar` crate.
    fn layer(files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// Files of a "big" layer: 128 files of 64 KiB of noise (8 MiB).
    fn files() -> Vec<(String, Vec<u8>)> {
        (0..128)
            .map(|i| (format!("srv/data/f{i:03}.bin"), noise(i, 64 * 1024)))
            .collect()
    }

    /// v1 and v2 of the big layer: v2 has new content in one file.
    fn v1_v2() -> (Vec<u8>, Vec<u8>) {
        let mut f = files();
        let v1 = layer(&f);
        f[77].1 = noise(1_000_077, 64 * 1024);
        (v1, layer(&f))
    }

    fn reference(bytes: &[u8]) -> Reference {
        Reference::read(bytes, bytes.len() as u64, "ref").unwrap()
    }

    fn make(r: &Reference, target: &[u8], opts: &PatchOptions) -> (PatchStats, Vec<u8>) {
        let mut patch = Vec::new();
        let stats = r.make_patch(target, &mut patch, opts).unwrap();
        (stats, patch)
    }

    #[test]
    fn one_changed_file_in_a_big_layer_gives_a_small_patch_that_rebuilds_it_exactly() {
        let (v1, v2) = v1_v2();
        let dir = tempfile::tempdir().unwrap();
        let ref_path = dir.path().join("v1.tar");
        std::fs::write(&ref_path, &v1).unwrap();
        for target_size in [None, Some(v2.len() as u64)] {
            let opts = PatchOptions {
                target_size,
                ..PatchOptions::default()
            };
            let mut patch = Vec::new();
            let stats = make_patch(&ref_path, v2.as_slice(), &mut patch, &opts).unwrap();
            assert_eq!(stats.target_digest, Digest::of(&v2));
            assert_eq!(stats.target_size, v2.len() as u64);
            assert_eq!(stats.patch_digest, Digest::of(&patch));
            assert_eq!(stats.patch_size, patch.len() as u64);
            assert_eq!(stats.window_log, 25, "ref + target = 16.6 MB < 32 MiB");
            // The changed file is noise: it is the patch, and the rest costs next to nothing.
            assert!(
                patch.len() > 64 * 1024 && patch.len() < 64 * 1024 + 4 * 1024,
                "{target_size:?}: patch of {} bytes for an {}-byte layer",
                patch.len(),
                v2.len()
            );
            let mut rebuilt = Vec::new();
            let (digest, size) = apply_patch(&ref_path, patch.as_slice(), &mut rebuilt).unwrap();
            assert_eq!(digest, Digest::of(&v2));
            assert_eq!(size, v2.len() as u64);
            assert!(rebuilt == v2, "{target_size:?}: rebuilt bytes differ");
        }
    }

    #[test]
    fn small_and_empty_layers_round_trip() {
        let base = layer(&[("a".into(), b"hello".to_vec())]);
        let cases: [(&[u8], &[u8]); 4] = [
            (&base, b""),
            (b"", &base),
            (b"", b""),
            (&base, &layer(&[("a".into(), b"hullo".to_vec())])),
        ];
        for (reference_bytes, target) in cases {
            for target_size in [None, Some(target.len() as u64)] {
                let r = reference(reference_bytes);
                let opts = PatchOptions {
                    target_size,
                    ..PatchOptions::default()
                };
                let (stats, patch) = make(&r, target, &opts);
                assert_eq!(stats.target_digest, Digest::of(target));
                let mut rebuilt = Vec::new();
                let got = r
                    .apply_patch(patch.as_slice(), &mut rebuilt, Some(target.len() as u64))
                    .unwrap();
                let what = format!("ref {} target {} {target_size:?}", r.len(), target.len());
                assert_eq!(got, (Digest::of(target), target.len() as u64), "{what}");
                assert!(rebuilt == target, "{what}");
            }
        }
    }

    #[test]
    fn a_wrong_reference_is_refused() {
        let (v1, v2) = v1_v2();
        let (_, patch) = make(&reference(&v1), &v2, &PatchOptions::default());
        // Same size, other content: the frame decodes to other bytes, which zstd's checksum
        // catches.
        let mut f = files();
        f[3].1 = noise(3_000_003, 64 * 1024);
        let other = layer(&f);
        assert_eq!(other.len(), v1.len());
        let err = reference(&other)
            .apply_patch(patch.as_slice(), &mut Vec::new(), None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "patch: Restored data doesn't match checksum"
        );
        // A much smaller reference cannot have needed this window: refused before decoding.
        let small = layer(&[("a".into(), b"hello".to_vec())]);
        let err = reference(&small)
            .apply_patch(patch.as_slice(), &mut Vec::new(), None)
            .unwrap_err();
        assert!(
            matches!(
                err,
                PatchError::WindowTooLarge {
                    window: 33_554_432,
                    limit: 4096,
                    reference_size: 2048
                }
            ),
            "{err}"
        );
        // With the target size in the frame the window fits; the matches then reach before the
        // start of the small reference, which zstd refuses as corrupt.
        let sized = PatchOptions {
            target_size: Some(v2.len() as u64),
            ..PatchOptions::default()
        };
        let (_, patch) = make(&reference(&v1), &v2, &sized);
        let err = reference(&small)
            .apply_patch(patch.as_slice(), &mut Vec::new(), None)
            .unwrap_err();
        assert!(matches!(err, PatchError::Decode(_)), "{err:?}");
        assert_eq!(err.to_string(), "patch: Data corruption detected");
    }

    #[test]
    fn a_damaged_patch_is_refused() {
        let (v1, v2) = v1_v2();
        let r = reference(&v1);
        let (_, patch) = make(&r, &v2, &PatchOptions::default());
        let apply = |p: &[u8]| {
            r.apply_patch(p, &mut Vec::new(), None)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            apply(&patch[..patch.len() / 2]),
            "patch: truncated (its zstd frame is incomplete)"
        );
        assert_eq!(
            apply(&patch[..patch.len() - 1]),
            "patch: truncated (its zstd frame is incomplete)"
        );
        assert_eq!(
            apply(&patch[..5]),
            "patch: not a zstd frame: its header is cut short after 5 bytes"
        );
        assert_eq!(
            apply(&patch[..2]),
            "patch: not a zstd frame: it does not start with zstd's magic number"
        );
        assert_eq!(
            apply(b""),
            "patch: not a zstd frame: it does not start with zstd's magic number"
        );
        assert_eq!(
            apply(&[patch.as_slice(), b"x"].concat()),
            "patch: data after the end of its zstd frame"
        );
        // A second frame after the first is not part of the patch either.
        assert_eq!(
            apply(&[patch.as_slice(), patch.as_slice()].concat()),
            "patch: data after the end of its zstd frame"
        );
        let mut flipped = patch.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        let err = r
            .apply_patch(flipped.as_slice(), &mut Vec::new(), None)
            .unwrap_err();
        assert!(matches!(err, PatchError::Decode(_)), "{err:?}");
    }

    #[test]
    fn a_patch_rebuilding_another_size_than_expected_is_refused() {
        let (v1, v2) = v1_v2();
        let r = reference(&v1);
        let len = v2.len() as u64;
        let unsized_patch = make(&r, &v2, &PatchOptions::default()).1;
        let sized = PatchOptions {
            target_size: Some(len),
            ..PatchOptions::default()
        };
        let sized_patch = make(&r, &v2, &sized).1;
        for (patch, expected, message) in [
            // The header declares the size: refused before decoding.
            (
                &sized_patch,
                len + 1,
                format!("it rebuilds {len} bytes, not the expected {}", len + 1),
            ),
            (
                &sized_patch,
                len - 1,
                format!("it rebuilds {len} bytes, not the expected {}", len - 1),
            ),
            // It does not: found at the end, or as soon as the output is too long.
            (
                &unsized_patch,
                len + 1,
                format!("it rebuilds {len} bytes, not the expected {}", len + 1),
            ),
            (
                &unsized_patch,
                len - 1,
                format!("it rebuilds more than the expected {} bytes", len - 1),
            ),
        ] {
            let mut out = Vec::new();
            let err = r
                .apply_patch(patch.as_slice(), &mut out, Some(expected))
                .unwrap_err();
            assert_eq!(err.to_string(), format!("patch: {message}"));
            assert!(out.len() as u64 <= expected.min(len));
        }
    }

    #[test]
    fn a_header_claiming_a_huge_window_is_refused_before_decoding() {
        // Magic, descriptor 0 (window descriptor follows, no content size), window 2^31.
        let header = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3];
        let r = reference(&[0u8; 100_000]);
        let err = r
            .apply_patch(&header[..], &mut Vec::new(), None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "patch: its zstd window of 2147483648 bytes is larger than the 262144 bytes a patch against a reference of 100000 bytes can need"
        );
    }

    #[test]
    fn frame_headers_are_read_as_rfc_8878_says() {
        let magic = [0x28, 0xb5, 0x2f, 0xfd];
        let ok = |window_size, content_size| {
            Ok(FrameHeader {
                window_size,
                content_size,
            })
        };
        let cases: [(&[u8], Result<FrameHeader, String>); 8] = [
            // Window descriptor: exponent 14 (2^24), mantissa 3: + 3/8.
            (&[0x00, 14 << 3 | 3], ok((1 << 24) + 3 * (1 << 21), None)),
            // Single segment, 1-byte content size: the window is the content.
            (&[0x20, 200], ok(200, Some(200))),
            // 2-byte content size is offset by 256.
            (&[0x40, 15 << 3, 0x01, 0x00], ok(1 << 25, Some(257))),
            // 4-byte dictionary ID skipped, 8-byte content size; what follows is not read.
            (
                &[0xe3, 0, 1, 2, 3, 5, 0, 0, 0, 0, 0, 0, 9, 0xff],
                ok(0x0900_0000_0000_0005, Some(0x0900_0000_0000_0005)),
            ),
            (
                &[0x08, 0],
                Err("its header has the reserved bit set".into()),
            ),
            (&[0x00], Err("its header is cut short after 5 bytes".into())),
            (
                &[0xc0, 0, 1, 2],
                Err("its header is cut short after 8 bytes".into()),
            ),
            (&[0x20], Err("its header is cut short after 5 bytes".into())),
        ];
        for (rest, expected) in cases {
            let head = [&magic[..], rest].concat();
            assert_eq!(FrameHeader::parse(&head), expected, "{rest:x?}");
        }
    }

    #[test]
    fn window_log_covers_reference_and_target() {
        for (reference, target, expected) in [
            (0, None, 10),
            (1000, Some(1000), 11),
            (1024, None, 11),
            (1025, None, 12),
            (500 << 20, None, 30),
            (500 << 20, Some(600 << 20), 31),
            (1 << 30, Some(1), 31),
            (MAX_REFERENCE_SIZE, Some(u64::MAX), 31),
        ] {
            assert_eq!(
                window_log(reference, target),
                expected,
                "{reference} {target:?}"
            );
        }
    }

    #[test]
    fn a_reference_over_the_limit_is_refused_from_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.tar");
        // Sparse: no data is written, and none would be read.
        let f = File::create(&path).unwrap();
        f.set_len(MAX_REFERENCE_SIZE + 1).unwrap();
        drop(f);
        struct Unread;
        impl Read for Unread {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                panic!("the target must not be read");
            }
        }
        let expected = format!(
            "reference layer {}: 2147483649 bytes, more than the 2147483648 bytes a zstd patch can refer to",
            path.display()
        );
        let err = make_patch(&path, Unread, Vec::new(), &PatchOptions::default()).unwrap_err();
        assert!(
            matches!(err, PatchError::ReferenceTooBig { size, limit, .. }
            if size == MAX_REFERENCE_SIZE + 1 && limit == MAX_REFERENCE_SIZE)
        );
        assert_eq!(err.to_string(), expected);
        let err = apply_patch(&path, Unread, Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), expected);
        let err = Reference::read(Unread, MAX_REFERENCE_SIZE + 1, "layer sha256:ab").unwrap_err();
        assert_eq!(
            err.to_string(),
            "reference layer layer sha256:ab: 2147483649 bytes, more than the 2147483648 bytes a zstd patch can refer to"
        );
    }

    #[test]
    fn a_reference_of_another_size_than_declared_is_refused() {
        for (bytes, declared, found) in [(&b"abc"[..], 4, 3), (b"abcde", 4, 5)] {
            let err = Reference::read(bytes, declared, "r").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("reference layer r: expected {declared} bytes, found {found}")
            );
        }
        let err = Reference::open(Path::new("/nonexistent/ref.tar")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "reference layer /nonexistent/ref.tar: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn the_target_size_and_the_patch_limit_are_enforced() {
        let (v1, v2) = v1_v2();
        let r = reference(&v1);
        let len = v2.len() as u64;
        for (announced, found) in [(len + 1, len), (len - 1, len)] {
            let opts = PatchOptions {
                target_size: Some(announced),
                ..PatchOptions::default()
            };
            let err = r.make_patch(v2.as_slice(), Vec::new(), &opts).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("the layer to patch has {found} bytes, not the {announced} announced")
            );
        }
        // Against an unrelated reference the patch is the compressed noise: over the limit.
        let unrelated = reference(&layer(&[("x".into(), noise(5, 1 << 20))]));
        let opts = PatchOptions {
            max_size: Some(len / 2),
            ..PatchOptions::default()
        };
        let err = unrelated
            .make_patch(v2.as_slice(), Vec::new(), &opts)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("the patch is larger than {} bytes", len / 2)
        );
        // The real reference stays under it.
        let (stats, _) = make(&r, &v2, &opts);
        assert!(stats.patch_size < len / 2);
    }

    /// Digests `sha256:<c × 64>`.
    fn ids() -> Vec<Digest> {
        "0123456789abcdef"
            .chars()
            .map(|c| Digest::from_hex(&c.to_string().repeat(64)).unwrap())
            .collect()
    }

    fn facts<'a>(id: &'a Digest, size: u64, created_by: Option<&'a str>) -> LayerSummary<'a> {
        LayerSummary {
            diff_id: id,
            size: Some(size),
            created_by,
        }
    }

    fn unsized_facts<'a>(id: &'a Digest, created_by: Option<&'a str>) -> LayerSummary<'a> {
        LayerSummary {
            diff_id: id,
            size: None,
            created_by,
        }
    }

    #[test]
    fn references_are_chosen_by_position_step_then_size() {
        use Pick::{InBase, Patch, Whole};
        use Reason::{SameCreatedBy, SamePosition, SimilarSize};
        let d = ids();
        let base1 = vec![
            facts(&d[0], 80 << 20, Some("ADD rootfs.tar /")),
            facts(&d[1], 30 << 20, Some("RUN apt-get install -y python3")),
            facts(&d[2], 500 << 20, Some("COPY . /app # buildkit")),
            facts(&d[3], 10 << 20, Some("RUN make")),
        ];
        let base2 = vec![
            facts(&d[0], 80 << 20, Some("ADD rootfs.tar /")),
            facts(&d[4], 2 << 20, Some("COPY file:aaa in /etc")),
            facts(&d[5], 31 << 20, None),
        ];
        let bases = [base1, base2];
        let target = vec![
            // In both bases: the first one wins.
            facts(&d[0], 80 << 20, Some("ADD rootfs.tar /")),
            // Same step at the same position of base1, though another size.
            facts(&d[6], 45 << 20, Some("RUN apt-get install -y python3")),
            // Same step at the same position.
            facts(&d[7], 501 << 20, Some("COPY . /app # buildkit")),
            // created_by with a content hash: nothing equal; the closest size within 2× is
            // base2's 31 MiB layer (base1's 30 MiB one is next).
            facts(&d[9], 32 << 20, Some("COPY file:bbb in /opt")),
            // Same step, another position (base1 layer 3).
            facts(&d[8], 11 << 20, Some("RUN make")),
            // No history: by size, 2 MiB → base2 layer 1.
            facts(&d[10], 3 << 20, None),
            // Nothing within 2×: 4.5 MiB is 2.25× 2 MiB and 10 MiB is 2.2× 4.5 MiB.
            facts(&d[11], 9 << 19, None),
            // Empty layer: nothing is similar to nothing.
            facts(&d[12], 0, None),
            // Same as an earlier target layer's base: in base.
            facts(&d[3], 10 << 20, Some("RUN make")),
        ];
        assert_eq!(
            choose_reference(&target, &bases),
            vec![
                InBase { image: 0, layer: 0 },
                Patch {
                    image: 0,
                    layer: 1,
                    reason: SamePosition
                },
                Patch {
                    image: 0,
                    layer: 2,
                    reason: SamePosition
                },
                Patch {
                    image: 1,
                    layer: 2,
                    reason: SimilarSize
                },
                Patch {
                    image: 0,
                    layer: 3,
                    reason: SameCreatedBy
                },
                Patch {
                    image: 1,
                    layer: 1,
                    reason: SimilarSize
                },
                Whole,
                Whole,
                InBase { image: 0, layer: 3 },
            ]
        );
    }

    #[test]
    fn reference_choice_edge_cases() {
        use Pick::{Patch, Whole};
        use Reason::{SameCreatedBy, SamePosition, SimilarSize};
        let d = ids();
        for (what, target, bases, expected) in [
            (
                "no base image",
                vec![facts(&d[0], 100, Some("RUN a"))],
                vec![],
                vec![Whole],
            ),
            (
                "exactly 2× is within the ratio, just over is not",
                vec![facts(&d[0], 200, None), facts(&d[1], 201, None)],
                vec![vec![facts(&d[5], 100, None)]],
                vec![
                    Patch {
                        image: 0,
                        layer: 0,
                        reason: SimilarSize,
                    },
                    Whole,
                ],
            ),
            (
                "an empty created_by says nothing",
                vec![facts(&d[0], 100, Some(""))],
                vec![vec![facts(&d[5], 1000, Some(""))]],
                vec![Whole],
            ),
            (
                "the same position in a later base beats the same step elsewhere in the first",
                vec![facts(&d[0], 100, None), facts(&d[1], 100, Some("RUN a"))],
                vec![
                    vec![facts(&d[5], 100, Some("RUN a"))],
                    vec![facts(&d[6], 1, None), facts(&d[7], 90, Some("RUN a"))],
                ],
                vec![
                    Patch {
                        image: 0,
                        layer: 0,
                        reason: SimilarSize,
                    },
                    Patch {
                        image: 1,
                        layer: 1,
                        reason: SamePosition,
                    },
                ],
            ),
            (
                "several with the same step: the closest size; ties: the first",
                vec![
                    facts(&d[0], 100, Some("RUN a")),
                    facts(&d[1], 400, Some("RUN b")),
                ],
                vec![vec![
                    facts(&d[5], 10, Some("RUN z")),
                    facts(&d[6], 1000, Some("RUN a")),
                    facts(&d[7], 120, Some("RUN a")),
                    facts(&d[8], 90, Some("RUN a")),
                    facts(&d[9], 800, Some("RUN b")),
                    facts(&d[10], 200, Some("RUN b")),
                ]],
                vec![
                    Patch {
                        image: 0,
                        layer: 3,
                        reason: SameCreatedBy,
                    },
                    Patch {
                        image: 0,
                        layer: 4,
                        reason: SameCreatedBy,
                    },
                ],
            ),
            (
                "a same-position layer over the reference limit is passed over",
                vec![facts(&d[0], 100, Some("RUN a"))],
                vec![vec![
                    facts(&d[5], MAX_REFERENCE_SIZE + 1, Some("RUN a")),
                    facts(&d[6], 150, Some("RUN a")),
                ]],
                vec![Patch {
                    image: 0,
                    layer: 1,
                    reason: SameCreatedBy,
                }],
            ),
            (
                "unknown sizes: the size rule needs both, an unknown one is the farthest",
                vec![
                    unsized_facts(&d[0], None),
                    facts(&d[1], 100, Some("RUN a")),
                    unsized_facts(&d[2], Some("RUN c")),
                    facts(&d[3], 90, Some("RUN e")),
                ],
                vec![vec![
                    unsized_facts(&d[5], None),
                    facts(&d[6], MAX_REFERENCE_SIZE + 1, Some("RUN a")),
                    unsized_facts(&d[7], Some("RUN a")),
                    facts(&d[8], 100, Some("RUN c")),
                    unsized_facts(&d[9], Some("RUN c")),
                    unsized_facts(&d[10], Some("RUN e")),
                    facts(&d[11], 1000, Some("RUN e")),
                ]],
                vec![
                    Whole,
                    Patch {
                        image: 0,
                        layer: 2,
                        reason: SameCreatedBy,
                    },
                    Patch {
                        image: 0,
                        layer: 3,
                        reason: SameCreatedBy,
                    },
                    Patch {
                        image: 0,
                        layer: 6,
                        reason: SameCreatedBy,
                    },
                ],
            ),
        ] {
            assert_eq!(choose_reference(&target, &bases), expected, "{what}");
        }
    }

    #[test]
    fn summaries_of_an_inventory_image_take_diff_size_and_created_by() {
        // The second chain ID is sha256("<diff_id 0> <diff_id 1>").
        let inv = hoist_format::delta::Inventory::parse(
            br#"{"hoistInventory":1,"images":[{"id":"sha256:1111111111111111111111111111111111111111111111111111111111111111","layers":[
                {"diffID":"sha256:0000000000000000000000000000000000000000000000000000000000000000","chainID":"sha256:0000000000000000000000000000000000000000000000000000000000000000","diffSize":10,"createdBy":"ADD a"},
                {"diffID":"sha256:1111111111111111111111111111111111111111111111111111111111111111","chainID":"sha256:f94b891e05f6e37c90d87edfd5bb98a02d618a437c35f3a94b3b00e48e894631"}]}]}"#,
        )
        .unwrap();
        let d = ids();
        assert_eq!(
            LayerSummary::of_image(&inv.images[0]),
            vec![facts(&d[0], 10, Some("ADD a")), unsized_facts(&d[1], None)]
        );
    }
}
