//! Bounded capture of a command's combined stdout and stderr.
//!
//! Invariant: memory held is at most `head_cap + tail_cap` bytes no matter how much a command
//! prints (the escape suite writes 5 GB). The head keeps the first bytes (how the run started,
//! often the command echo), the tail keeps the last bytes (where builds and test runners put the
//! failure), and everything in between is only counted. Lines are also split out for live
//! streaming; a line longer than the cap is cut so a newline-free flood cannot grow a buffer.

use std::collections::VecDeque;

/// What a command printed, with the middle dropped once it exceeds the cap.
#[derive(Debug, Clone, Default)]
pub struct CapturedOutput {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    dropped: u64,
    total: u64,
}

impl CapturedOutput {
    /// A capture keeping at most `cap` bytes: a quarter for the head, the rest for the tail.
    pub fn with_cap(cap: usize) -> Self {
        let head_cap = cap / 4;
        Self {
            head_cap,
            tail_cap: cap - head_cap,
            ..Self::default()
        }
    }

    /// Appends bytes, moving overflow from the tail into the dropped count.
    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.head.len() < self.head_cap {
            let take = (self.head_cap - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.len() >= self.tail_cap {
            self.dropped += (self.tail.len() + bytes.len() - self.tail_cap) as u64;
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.dropped += overflow as u64;
        self.tail.extend(bytes);
    }

    /// Head, a marker naming how many bytes were omitted (if any), then the tail.
    pub fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            out.push_str(&format!("\n[… {} bytes omitted …]\n", self.dropped));
        }
        let (a, b) = self.tail.as_slices();
        out.push_str(&String::from_utf8_lossy(&[a, b].concat()));
        out
    }

    /// The last `max_bytes` bytes printed (as far as they were kept), for model prompts.
    pub fn tail(&self, max_bytes: usize) -> String {
        let kept: Vec<u8> = if self.dropped == 0 {
            self.head.iter().chain(self.tail.iter()).copied().collect()
        } else {
            self.tail.iter().copied().collect()
        };
        let start = kept.len().saturating_sub(max_bytes);
        String::from_utf8_lossy(&kept[start..]).into_owned()
    }

    /// Bytes printed but not kept.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// Bytes printed in total, kept or not.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }
}

/// Splits a byte stream into lines for live streaming, never buffering more than `max_line`.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    max_line: usize,
}

impl LineSplitter {
    pub(crate) fn new(max_line: usize) -> Self {
        Self {
            partial: Vec::new(),
            max_line: max_line.max(1),
        }
    }

    /// Feeds bytes and returns the complete lines they finish (without the newline).
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                lines.push(self.take());
            } else if self.partial.len() < self.max_line {
                self.partial.push(b);
            } else {
                // Over-long line: emit what we have and start a new one.
                lines.push(self.take());
                self.partial.push(b);
            }
        }
        lines
    }

    /// The unfinished last line, if any.
    pub(crate) fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let mut out = CapturedOutput::with_cap(100);
        out.push(b"hello ");
        out.push(b"world");
        assert_eq!(out.text(), "hello world");
        assert_eq!(out.tail(5), "world");
        assert_eq!(out.dropped_bytes(), 0);
    }

    #[test]
    fn large_output_keeps_head_and_tail_and_counts_the_rest() {
        let mut out = CapturedOutput::with_cap(8);
        for chunk in [&b"ABCDEFG"[..], b"hijklmn", b"OPQRSTUVWXYZ"] {
            out.push(chunk);
        }
        // head = 2 bytes, tail = 6 bytes, total 26.
        assert_eq!(out.text(), "AB\n[… 18 bytes omitted …]\nUVWXYZ");
        assert_eq!(out.dropped_bytes(), 18);
        assert_eq!(out.total_bytes(), 26);
        assert_eq!(out.tail(3), "XYZ");
    }

    #[test]
    fn many_small_pushes_stay_bounded() {
        let mut out = CapturedOutput::with_cap(16);
        for _ in 0..10_000 {
            out.push(b"0123456789");
        }
        assert!(out.text().len() < 64);
        assert_eq!(out.dropped_bytes(), 100_000 - 16);
    }

    #[test]
    fn splitter_yields_lines_and_cuts_long_ones() {
        let mut s = LineSplitter::new(4);
        assert_eq!(s.feed(b"ab\ncd"), vec!["ab"]);
        assert_eq!(s.feed(b"e\nfghijk"), vec!["cde", "fghi"]);
        assert_eq!(s.finish().as_deref(), Some("jk"));
        assert_eq!(s.finish(), None);
    }
}
