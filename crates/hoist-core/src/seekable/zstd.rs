//! zstd: frames decoded with libzstd's streaming decoder; checkpoints at frame starts.
//!
//! A frame cannot be entered in the middle (its blocks refer back to the whole frame), so a
//! blob of one frame has its start as the only checkpoint. Skippable frames are skipped by the
//! decoder; a checkpoint may be at the start of one, which the decoder skips again on resume.

use std::io::{self, Read, Seek, SeekFrom};

use ::zstd::zstd_safe::{DCtx, InBuffer, OutBuffer, ResetDirective, get_error_name};

use super::{Checkpoint, Checkpoints, Compression, Recorder, SeekError};
use crate::compress::IO_BUF_SIZE;

/// What one step of [`Core::step`] did.
#[derive(Debug)]
pub(super) enum Event {
    /// A frame starts at this compressed offset.
    FrameStart(u64),
    /// Bytes written to the output (maybe none, at the end of a frame).
    Data(usize),
    /// The input ended after a whole frame (or was empty).
    End,
}

/// A zstd stream decoder (one or more frames) that knows where its frames start.
pub(super) struct Core<R> {
    input: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    eof: bool,
    /// Compressed offset of `buf[pos]`.
    offset: u64,
    dctx: DCtx<'static>,
    in_frame: bool,
    frame_start: u64,
    /// Whether a frame was seen: an empty stream is not zstd (libzstd: "incomplete frame").
    started: bool,
}

impl<R: Read> Core<R> {
    fn new(input: R, offset: u64) -> Self {
        Core {
            input,
            buf: vec![0u8; IO_BUF_SIZE].into_boxed_slice(),
            pos: 0,
            len: 0,
            eof: false,
            offset,
            dctx: DCtx::create(),
            in_frame: false,
            frame_start: offset,
            started: false,
        }
    }

    /// A decoder of `blob` from the frame starting at `input`.
    pub(super) fn resume(mut blob: R, input: u64) -> io::Result<Self>
    where
        R: Seek,
    {
        // A frame starts there (maybe a skippable one at the end): nothing is an error.
        blob.seek(SeekFrom::Start(input))?;
        Ok(Core::new(blob, input))
    }

    /// Makes input available; false at the end of the input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos < self.len {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        loop {
            match self.input.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Decodes some of the stream into `out` (not empty).
    pub(super) fn step(&mut self, out: &mut [u8]) -> io::Result<Event> {
        loop {
            if !self.in_frame {
                if !self.fill()? {
                    if !self.started {
                        return Err(self.truncated());
                    }
                    return Ok(Event::End);
                }
                self.started = true;
                self.in_frame = true;
                self.frame_start = self.offset;
                return Ok(Event::FrameStart(self.offset));
            }
            let more = self.fill()?;
            let mut src = InBuffer::around(&self.buf[self.pos..self.len]);
            let mut dst = OutBuffer::around(out);
            let res = self.dctx.decompress_stream(&mut dst, &mut src);
            let (consumed, produced) = (src.pos(), dst.pos());
            self.pos += consumed;
            self.offset += consumed as u64;
            let hint = res.map_err(|code| {
                SeekError::Corrupt {
                    compression: Compression::Zstd,
                    offset: self.offset,
                    reason: get_error_name(code).to_string(),
                }
                .into_io()
            })?;
            if hint == 0 {
                // The frame is complete and all its output given: the next byte starts another.
                self.in_frame = false;
                self.dctx
                    .reset(ResetDirective::SessionOnly)
                    .map_err(|code| io::Error::other(get_error_name(code)))?;
            }
            if produced > 0 || hint == 0 {
                return Ok(Event::Data(produced));
            }
            if !more {
                return Err(self.truncated());
            }
        }
    }

    fn truncated(&self) -> io::Error {
        SeekError::Truncated {
            compression: Compression::Zstd,
            offset: self.offset,
            what: format!("the frame starting at offset {}", self.frame_start),
        }
        .into_io()
    }
}

impl<R: Read> Read for Core<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.step(buf)? {
                Event::FrameStart(_) | Event::Data(0) => {}
                Event::Data(n) => return Ok(n),
                Event::End => return Ok(0),
            }
        }
    }
}

/// The zstd side of [`super::CheckpointingReader`].
pub(super) struct Indexer<R> {
    core: Core<R>,
    rec: Recorder,
    out: u64,
    done: bool,
}

impl<R: Read> Indexer<R> {
    pub(super) fn new(input: R, rec: Recorder) -> Self {
        Indexer {
            core: Core::new(input, 0),
            rec,
            out: 0,
            done: false,
        }
    }

    pub(super) fn finish(self) -> Checkpoints {
        let lengths = self.done.then_some((self.core.offset, self.out));
        self.rec.finish(lengths)
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.core.step(buf)? {
                Event::FrameStart(offset) => {
                    if self.rec.free_due(self.out) {
                        self.rec.push(Checkpoint::start(offset, self.out));
                    }
                }
                Event::Data(n) => {
                    self.rec.output(&buf[..n]);
                    self.out += n as u64;
                    if n > 0 {
                        return Ok(n);
                    }
                }
                Event::End => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
    }
}
