//! One gzip member made of two raw-deflate parts compressed at different times.
//!
//! `/metrics` keeps the per-domain families as a deflate stream that ends with a sync flush (a
//! byte-aligned empty stored block, no final block), built off the request path. A scrape
//! deflates the exporter's own metrics with a fresh compressor (finished: its last block is
//! final) and sends `header · cached part · fresh part · trailer`. Deflate blocks do not depend
//! on how they were cut into writes, and the fresh part never refers back into the cached one,
//! so the two parts read as one stream: a single gzip member (RFC 1952) whose CRC-32 is the two
//! parts' CRCs combined and whose ISIZE is their total length modulo 2^32.

use flate2::{Compress, Compression, Crc, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;

/// The gzip header: magic, deflate, no flags, no modification time, no extra flags, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Spare output space made before each call into the compressor.
const CHUNK: usize = 64 * 1024;

/// A finished raw-deflate part: its bytes and the CRC-32 and length of what went in.
#[derive(Debug)]
pub struct DeflatePart {
    /// The compressed bytes.
    pub bytes: Vec<u8>,
    /// CRC-32 and length (modulo 2^32) of the uncompressed input.
    pub crc: Crc,
    /// Length of the uncompressed input.
    pub input_len: u64,
}

/// A raw-deflate compressor fed through `io::Write`.
pub struct DeflateWriter {
    compress: Compress,
    out: Vec<u8>,
    crc: Crc,
}

impl DeflateWriter {
    /// A fresh compressor at the fastest level (the text is repetitive: level 1 already gets
    /// most of what deflate can get out of it, at a fraction of the time).
    pub fn new() -> Self {
        Self::with_level(Compression::fast())
    }

    /// A fresh compressor at `level`.
    pub fn with_level(level: Compression) -> Self {
        Self {
            compress: Compress::new(level, false),
            out: Vec::new(),
            crc: Crc::new(),
        }
    }

    /// A fresh compressor at `level` whose back-references may reach into `dictionary` (text
    /// like what follows); [`inflate`] needs the same dictionary.
    pub fn with_dictionary(level: Compression, dictionary: &[u8]) -> io::Result<Self> {
        let mut writer = Self::with_level(level);
        if !dictionary.is_empty() {
            writer
                .compress
                .set_dictionary(dictionary)
                .map_err(io::Error::other)?;
        }
        Ok(writer)
    }

    /// Makes room for `bytes` of output up front (e.g. the size of the previous build), so the
    /// buffer does not grow by doubling.
    pub fn reserve(&mut self, bytes: usize) {
        self.out.reserve(bytes);
    }

    /// Ends the part with a sync flush: byte-aligned, no final block, so another part can follow.
    pub fn sync_flushed(mut self) -> io::Result<DeflatePart> {
        loop {
            self.out.reserve(CHUNK);
            let room = self.out.capacity() - self.out.len();
            let before = self.out.len();
            self.compress
                .compress_vec(&[], &mut self.out, FlushCompress::Sync)
                .map_err(io::Error::other)?;
            // The flush is complete once the compressor leaves some of the room it was given.
            if self.out.len() - before < room {
                break;
            }
        }
        Ok(self.into_part())
    }

    /// Ends the part with a final block: nothing may follow it in the stream.
    pub fn finished(mut self) -> io::Result<DeflatePart> {
        loop {
            self.out.reserve(CHUNK);
            let status = self
                .compress
                .compress_vec(&[], &mut self.out, FlushCompress::Finish)
                .map_err(io::Error::other)?;
            if status == Status::StreamEnd {
                break;
            }
        }
        Ok(self.into_part())
    }

    fn into_part(self) -> DeflatePart {
        let input_len = self.compress.total_in();
        let mut out = self.out;
        out.shrink_to_fit();
        DeflatePart {
            bytes: out,
            crc: self.crc,
            input_len,
        }
    }
}

impl Default for DeflateWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl io::Write for DeflateWriter {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let len = buf.len();
        self.crc.update(buf);
        while !buf.is_empty() {
            self.out.reserve(CHUNK);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(buf, &mut self.out, FlushCompress::None)
                .map_err(io::Error::other)?;
            let consumed = usize::try_from(self.compress.total_in() - before).unwrap_or(buf.len());
            buf = &buf[consumed.min(buf.len())..];
        }
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decompresses a part that ends with a sync flush (no final block), e.g. the cached per-domain
/// families: all of its input, which must end on a block boundary.
pub fn inflate_flushed(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut decompress = Decompress::new(false);
    let mut out = Vec::with_capacity(bytes.len() * 8);
    loop {
        out.reserve(CHUNK);
        let room = out.capacity() - out.len();
        let before = out.len();
        let consumed = usize::try_from(decompress.total_in()).unwrap_or(usize::MAX);
        let input = bytes.get(consumed..).unwrap_or_default();
        let status = decompress
            .decompress_vec(input, &mut out, FlushDecompress::Sync)
            .map_err(io::Error::other)?;
        let all_read = decompress.total_in() == bytes.len() as u64;
        if status == Status::StreamEnd || (all_read && out.len() - before < room) {
            return Ok(out);
        }
        if out.len() == before && input.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated deflate stream",
            ));
        }
    }
}

/// Decompresses a finished raw-deflate part made with `dictionary` (empty for none).
pub fn inflate(bytes: &[u8], dictionary: &[u8]) -> io::Result<Vec<u8>> {
    let mut decompress = Decompress::new(false);
    if !dictionary.is_empty() {
        decompress
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    loop {
        out.reserve(CHUNK);
        let consumed = usize::try_from(decompress.total_in()).unwrap_or(usize::MAX);
        let input = bytes.get(consumed..).unwrap_or_default();
        let before = (decompress.total_in(), decompress.total_out());
        let status = decompress
            .decompress_vec(input, &mut out, FlushDecompress::Finish)
            .map_err(io::Error::other)?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
        if before == (decompress.total_in(), decompress.total_out()) && input.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated deflate stream",
            ));
        }
    }
}

/// Parts that each end with a sync flush, one after the other: a part that ends with a sync
/// flush too.
pub fn concat(parts: Vec<DeflatePart>) -> DeflatePart {
    let mut crc = Crc::new();
    let mut bytes = Vec::with_capacity(parts.iter().map(|p| p.bytes.len()).sum());
    let mut input_len = 0;
    for part in parts {
        crc.combine(&part.crc);
        bytes.extend_from_slice(&part.bytes);
        input_len += part.input_len;
    }
    DeflatePart {
        bytes,
        crc,
        input_len,
    }
}

/// One gzip member: `first` must end with a sync flush, `last` must be finished.
pub fn member(first: &DeflatePart, last: &DeflatePart) -> Vec<u8> {
    // The CRC of the empty string is 0, so combining both onto a fresh one gives theirs.
    let mut crc = Crc::new();
    crc.combine(&first.crc);
    crc.combine(&last.crc);
    let mut out = Vec::with_capacity(HEADER.len() + first.bytes.len() + last.bytes.len() + 8);
    out.extend_from_slice(&HEADER);
    out.extend_from_slice(&first.bytes);
    out.extend_from_slice(&last.bytes);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
    out
}

/// Whether an `Accept-Encoding` header value accepts gzip (`gzip` or `*`, not with `q=0`).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(value) = accept_encoding else {
        return false;
    };
    value.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        if !(coding.eq_ignore_ascii_case("gzip")
            || coding.eq_ignore_ascii_case("x-gzip")
            || coding == "*")
        {
            return false;
        }
        parts.all(|parameter| {
            let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            !(name.trim().eq_ignore_ascii_case("q")
                && value.trim().parse::<f64>().is_ok_and(|q| q <= 0.0))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::{GzDecoder, MultiGzDecoder};
    use std::io::{Read, Write};

    fn part(text: &[u8], last: bool) -> DeflatePart {
        let mut writer = DeflateWriter::new();
        writer.write_all(text).unwrap();
        if last {
            writer.finished().unwrap()
        } else {
            writer.sync_flushed().unwrap()
        }
    }

    fn gunzip_single(bytes: &[u8]) -> Vec<u8> {
        let mut decoder = GzDecoder::new(bytes);
        let mut out = Vec::new();
        decoder.read_to_end(&mut out).unwrap();
        // A single-member decoder stops after the first member: nothing may be left over.
        let mut rest = Vec::new();
        decoder.into_inner().read_to_end(&mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "{} bytes after the first member",
            rest.len()
        );
        out
    }

    #[test]
    fn two_parts_make_one_member() {
        let first: Vec<u8> = (0..200_000)
            .flat_map(|i| format!("metric{{domain=\"d{i}.example\"}} 1\n").into_bytes())
            .collect();
        let second = b"# HELP own 1\nown 1\n# EOF\n";
        let body = member(&part(&first, false), &part(second, true));
        let mut expected = first.clone();
        expected.extend_from_slice(second);
        assert_eq!(gunzip_single(&body), expected);
        let mut multi = Vec::new();
        MultiGzDecoder::new(&body[..])
            .read_to_end(&mut multi)
            .unwrap();
        assert_eq!(multi, expected);
    }

    #[test]
    fn a_dictionary_shrinks_similar_text_and_comes_back() {
        let dictionary =
            br#"{"domain":"a.example","steps":[{"step":"root_domain","status":"ok"}]}"#;
        let text = br#"{"domain":"b.example","steps":[{"step":"root_domain","status":"ok"}]}"#;
        let pack = |dictionary: &[u8]| {
            let mut writer =
                DeflateWriter::with_dictionary(Compression::default(), dictionary).unwrap();
            writer.write_all(text).unwrap();
            writer.finished().unwrap().bytes
        };
        let with = pack(dictionary);
        let without = pack(b"");
        assert!(
            with.len() < without.len() / 2,
            "{} vs {}",
            with.len(),
            without.len()
        );
        assert_eq!(inflate(&with, dictionary).unwrap(), text);
        assert_eq!(inflate(&without, b"").unwrap(), text);
        assert!(inflate(&with, b"").is_err() || inflate(&with, b"").unwrap() != text);
        assert!(inflate(&with[..with.len() / 2], dictionary).is_err());
    }

    #[test]
    fn a_flushed_part_inflates_whole() {
        let text: Vec<u8> = (0..50_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let first = part(&text, false);
        assert_eq!(inflate_flushed(&first.bytes).unwrap(), text);
        let joined = concat(vec![
            part(b"a\n", false),
            part(b"", false),
            part(b"b\n", false),
        ]);
        assert_eq!(inflate_flushed(&joined.bytes).unwrap(), b"a\nb\n");
        assert_eq!(joined.input_len, 4);
        let body = member(&joined, &part(b"c\n", true));
        assert_eq!(gunzip_single(&body), b"a\nb\nc\n");
    }

    #[test]
    fn empty_parts_are_fine() {
        let body = member(&part(b"", false), &part(b"", true));
        assert!(gunzip_single(&body).is_empty());
        let body = member(&part(b"", false), &part(b"x\n", true));
        assert_eq!(gunzip_single(&body), b"x\n");
    }

    #[test]
    fn accept_encoding_is_read_like_http() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, GZIP;q=0.5")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("br, deflate")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
