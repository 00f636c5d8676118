//! Writing `state.json` (the pretty JSON of a [`RolloutTrace`]) on several
//! threads, byte for byte what `serde_json::to_writer_pretty` writes.
//!
//! The document is cut into pieces: the small top-level fields, and runs of
//! entries of the big maps (`conversation_items`, `terminal_operations`,
//! ...). Each piece is serialized on its own into a buffer, at the depth it
//! has in the document ([`crate::pretty`]), and the calling thread writes the
//! buffers out in document order. Helper threads serialize pieces ahead of
//! the writer, at most `window` pieces ahead, so memory stays a few pieces
//! however big the trace; the writer serializes pieces too when the next one
//! is not ready. Small traces use no helper thread at all.
//!
//! A piece's size is unknown until it is serialized, so pieces are cut by
//! entry count, from the bytes per entry seen so far in the same map.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::Range;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use crate::model::{Map, RolloutTrace};
use crate::pretty::{write_escaped_str, write_newline_indent, write_pretty};

/// How the work is shared out (`write_state` picks them; tests and
/// benchmarks set them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Threads serializing beside the writer.
    pub helpers: usize,
    /// The size a piece aims at, in bytes.
    pub piece_bytes: usize,
    /// Pieces serialized but not yet written, at most (plus the one the
    /// writer may be serializing itself).
    pub window: usize,
}

/// Below this many map entries, threads cost more than they save (a trace
/// this small serializes in well under a millisecond).
const PARALLEL_MIN_ENTRIES: usize = 512;
/// Serializing is memory-bound beyond a few threads: the writer and at most
/// this many helpers.
const MAX_HELPERS: usize = 3;
/// The entry size assumed for the first piece of a map, before its entry
/// size is known: a high guess, so the first piece is not huge.
const FIRST_GUESS_ENTRY_BYTES: usize = 16 * 1024;

impl Settings {
    /// One helper per spare core, none for small traces.
    pub fn for_entries(entries: usize) -> Self {
        let cores = crate::batch::cores();
        let helpers = if entries >= PARALLEL_MIN_ENTRIES { (cores - 1).min(MAX_HELPERS) } else { 0 };
        Settings { helpers, piece_bytes: 128 * 1024, window: 2 * (helpers + 1) }
    }

    /// All the work on the writing thread, for when every core is busy.
    pub fn one_thread() -> Self {
        Settings { helpers: 0, ..Settings::for_entries(0) }
    }
}

/// `state.json` of `trace`, written to `out`.
pub fn write_state(trace: &RolloutTrace, out: &mut dyn Write) -> io::Result<()> {
    let sections = sections(trace);
    let settings = Settings::for_entries(sections.iter().map(Section::entry_count).sum());
    write_sections(&sections, out, settings)
}

/// `write_state` with the work shared out as `settings` say.
pub fn write_state_with(trace: &RolloutTrace, out: &mut dyn Write, settings: Settings) -> io::Result<()> {
    write_sections(&sections(trace), out, settings)
}

fn write_sections(sections: &[Section<'_>], out: &mut dyn Write, settings: Settings) -> io::Result<()> {
    let work = Work::new(sections, settings);
    std::thread::scope(|scope| {
        for _ in 0..settings.helpers {
            // Without a thread, the writer just does more of the work.
            if std::thread::Builder::new().spawn_scoped(scope, || work.help()).is_err() {
                break;
            }
        }
        work.write(out)
    })
}

/// A top-level value, type-erased so that sections of any type share a list.
trait Field: Sync {
    fn write(&self, out: &mut Vec<u8>, depth: usize) -> serde_json::Result<()>;
}

impl<T: Serialize + Sync> Field for T {
    fn write(&self, out: &mut Vec<u8>, depth: usize) -> serde_json::Result<()> {
        write_pretty(out, depth, self)
    }
}

/// The entries of a map, in key order, addressable by position.
trait Entries: Sync {
    fn len(&self) -> usize;
    /// `,\n    "key": value` (no comma before the first) for each entry of
    /// `range`, at the depth of a top-level map's entries.
    fn write(&self, range: Range<usize>, out: &mut Vec<u8>) -> serde_json::Result<()>;
}

struct MapEntries<'a, V>(Vec<(&'a str, &'a V)>);

impl<V: Serialize + Sync> Entries for MapEntries<'_, V> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn write(&self, range: Range<usize>, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let first = range.start;
        for (index, (key, value)) in self.0[range].iter().enumerate() {
            if first + index > 0 {
                out.push(b',');
            }
            write_newline_indent(out, 2);
            write_escaped_str(out, key);
            out.extend_from_slice(b": ");
            write_pretty(out, 2, *value)?;
        }
        Ok(())
    }
}

/// A run of the top-level object: whole fields, or one big map that is
/// split by entries.
enum Section<'a> {
    Fields { first_in_document: bool, fields: Vec<(&'static str, &'a dyn Field)> },
    Map { key: &'static str, entries: Box<dyn Entries + 'a> },
}

impl Section<'_> {
    fn entry_count(&self) -> usize {
        match self {
            Section::Fields { .. } => 0,
            Section::Map { entries, .. } => entries.len(),
        }
    }

    /// Appends the bytes of `entries` of this section (all of it for
    /// fields), with the map's key before its first entry and its `}` after
    /// its last.
    fn write(&self, entries: Range<usize>, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Section::Fields { first_in_document, fields } => {
                for (index, (key, value)) in fields.iter().enumerate() {
                    write_field_key(out, *first_in_document && index == 0, key);
                    value.write(out, 1)?;
                }
                Ok(())
            }
            Section::Map { key, entries: map } => {
                let (opens, closes) = (entries.start == 0, entries.end == map.len());
                if opens {
                    // Never the first field: `schema_version` is.
                    write_field_key(out, false, key);
                    out.push(b'{');
                }
                map.write(entries, out)?;
                if closes {
                    write_newline_indent(out, 1);
                    out.push(b'}');
                }
                Ok(())
            }
        }
    }
}

fn write_field_key(out: &mut Vec<u8>, first: bool, key: &str) {
    if !first {
        out.push(b',');
    }
    write_newline_indent(out, 1);
    write_escaped_str(out, key);
    out.extend_from_slice(b": ");
}

/// The top-level object, field by field in the model's order, as sections.
fn sections(trace: &RolloutTrace) -> Vec<Section<'_>> {
    // Listing every field without `..` makes a new model field a compile
    // error here rather than a field missing from state.json.
    let RolloutTrace {
        schema_version,
        trace_id,
        rollout_id,
        started_at_unix_ms,
        ended_at_unix_ms,
        status,
        root_thread_id,
        threads,
        codex_turns,
        conversation_items,
        inference_calls,
        code_cells,
        tool_calls,
        terminal_sessions,
        terminal_operations,
        compactions,
        compaction_requests,
        interaction_edges,
        raw_payloads,
    } = trace;
    let mut sections = Sections(Vec::new());
    sections.field("schema_version", schema_version);
    sections.field("trace_id", trace_id);
    sections.field("rollout_id", rollout_id);
    sections.field("started_at_unix_ms", started_at_unix_ms);
    sections.field("ended_at_unix_ms", ended_at_unix_ms);
    sections.field("status", status);
    sections.field("root_thread_id", root_thread_id);
    sections.map("threads", threads);
    sections.map("codex_turns", codex_turns);
    sections.map("conversation_items", conversation_items);
    sections.map("inference_calls", inference_calls);
    sections.map("code_cells", code_cells);
    sections.map("tool_calls", tool_calls);
    sections.map("terminal_sessions", terminal_sessions);
    sections.map("terminal_operations", terminal_operations);
    sections.map("compactions", compactions);
    sections.map("compaction_requests", compaction_requests);
    sections.map("interaction_edges", interaction_edges);
    sections.map("raw_payloads", raw_payloads);
    sections.0
}

struct Sections<'a>(Vec<Section<'a>>);

impl<'a> Sections<'a> {
    fn field(&mut self, key: &'static str, value: &'a dyn Field) {
        match self.0.last_mut() {
            Some(Section::Fields { fields, .. }) => fields.push((key, value)),
            _ => {
                let first_in_document = self.0.is_empty();
                self.0.push(Section::Fields { first_in_document, fields: vec![(key, value)] });
            }
        }
    }

    fn map<V: Serialize + Sync>(&mut self, key: &'static str, map: &'a Map<V>) {
        // An empty map has no entries to split: `{}` as a plain field.
        if map.is_empty() {
            self.field(key, map);
        } else {
            let entries = map.iter().map(|(key, value)| (key.as_str(), value)).collect();
            self.0.push(Section::Map { key, entries: Box::new(MapEntries(entries)) });
        }
    }
}

/// One piece of the document: `entries` of section `section` (`0..0` for
/// a fields section), the `index`-th piece in document order.
#[derive(Debug, Clone)]
struct Piece {
    index: usize,
    section: usize,
    entries: Range<usize>,
}

/// The shared state of the writer and the helpers.
struct Work<'a> {
    sections: &'a [Section<'a>],
    settings: Settings,
    progress: Mutex<Progress>,
    /// Signalled when a piece is done or written, or the work stops.
    changed: Condvar,
}

#[derive(Default)]
struct Progress {
    /// The next piece to hand out: its section and first entry.
    next_section: usize,
    next_entry: usize,
    /// Pieces handed out, and written, so far.
    claimed: usize,
    written: usize,
    /// Serialized pieces not yet written, by index.
    done: BTreeMap<usize, Vec<u8>>,
    /// Written pieces' buffers, for reuse.
    spare: Vec<Vec<u8>>,
    /// Bytes and entries serialized so far, per section: the entry size
    /// that decides how many entries the next piece takes.
    serialized: Vec<(usize, usize)>,
    /// Set when serializing failed or the writer returned: helpers quit.
    stop: bool,
    error: Option<serde_json::Error>,
}

impl<'a> Work<'a> {
    fn new(sections: &'a [Section<'a>], settings: Settings) -> Self {
        let progress = Progress { serialized: vec![(0, 0); sections.len()], ..Progress::default() };
        Work { sections, settings, progress: Mutex::new(progress), changed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Progress> {
        // Nothing panics while holding the lock; if something did, the
        // counters are still consistent.
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'g>(&self, guard: MutexGuard<'g, Progress>) -> MutexGuard<'g, Progress> {
        self.changed.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// The next piece, if any is left, with a buffer to serialize it into.
    fn claim(&self, progress: &mut Progress) -> Option<(Piece, Vec<u8>)> {
        let section = self.sections.get(progress.next_section)?;
        let index = progress.claimed;
        let piece = match section {
            Section::Fields { .. } => Piece { index, section: progress.next_section, entries: 0..0 },
            Section::Map { entries, .. } => {
                let (bytes, serialized) = progress.serialized[progress.next_section];
                let per_entry = bytes.checked_div(serialized).unwrap_or(FIRST_GUESS_ENTRY_BYTES);
                let count = (self.settings.piece_bytes / per_entry.max(1)).max(1);
                let start = progress.next_entry;
                let end = (start + count).min(entries.len());
                Piece { index, section: progress.next_section, entries: start..end }
            }
        };
        if piece.entries.end == self.sections[piece.section].entry_count() {
            progress.next_section += 1;
            progress.next_entry = 0;
        } else {
            progress.next_entry = piece.entries.end;
        }
        progress.claimed += 1;
        Some((piece, progress.spare.pop().unwrap_or_default()))
    }

    /// Serializes `piece` (outside the lock) and files the result.
    fn serialize(&self, piece: Piece, mut buffer: Vec<u8>) {
        let result = self.sections[piece.section].write(piece.entries.clone(), &mut buffer);
        let mut progress = self.lock();
        match result {
            Ok(()) => {
                let serialized = &mut progress.serialized[piece.section];
                serialized.0 += buffer.len();
                serialized.1 += piece.entries.len();
                progress.done.insert(piece.index, buffer);
            }
            Err(err) => {
                progress.error.get_or_insert(err);
                progress.stop = true;
            }
        }
        drop(progress);
        self.changed.notify_all();
    }

    /// A helper thread: serializes pieces while the window has room.
    fn help(&self) {
        let _stop_on_panic = StopOnPanic(self);
        loop {
            let mut progress = self.lock();
            let claimed = loop {
                if progress.stop {
                    return;
                }
                if progress.claimed - progress.written < self.settings.window {
                    break self.claim(&mut progress);
                }
                progress = self.wait(progress);
            };
            drop(progress);
            match claimed {
                Some((piece, buffer)) => self.serialize(piece, buffer),
                None => return,
            }
        }
    }

    /// The calling thread: writes pieces in order, serializing one itself
    /// whenever the next is not ready.
    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        // Helpers must not wait for a writer that has returned.
        let _stop = StopOnReturn(self);
        out.write_all(b"{")?;
        let mut progress = self.lock();
        loop {
            let next = progress.written;
            if let Some(mut buffer) = progress.done.remove(&next) {
                drop(progress);
                out.write_all(&buffer)?;
                buffer.clear();
                progress = self.lock();
                progress.written += 1;
                // A piece with an exceptionally big entry does not keep its
                // buffer around.
                if buffer.capacity() <= 4 * self.settings.piece_bytes {
                    progress.spare.push(buffer);
                }
                self.changed.notify_all();
                continue;
            }
            if let Some(err) = progress.error.take() {
                return Err(err.into());
            }
            if let Some((piece, buffer)) = self.claim(&mut progress) {
                drop(progress);
                self.serialize(piece, buffer);
                progress = self.lock();
                continue;
            }
            if progress.written == progress.claimed {
                break;
            }
            progress = self.wait(progress);
        }
        drop(progress);
        out.write_all(b"\n}")
    }
}

/// Stops the helpers when the writer returns, whether done or failed.
struct StopOnReturn<'w, 'a>(&'w Work<'a>);

impl Drop for StopOnReturn<'_, '_> {
    fn drop(&mut self) {
        self.0.lock().stop = true;
        self.0.changed.notify_all();
    }
}

/// Stops the work if a helper panics, so that the writer does not wait for
/// its piece; the scope then passes the panic on.
struct StopOnPanic<'w, 'a>(&'w Work<'a>);

impl Drop for StopOnPanic<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut progress = self.0.lock();
            progress.stop = true;
            progress.error.get_or_insert_with(|| serde::ser::Error::custom("a serializing thread panicked"));
            drop(progress);
            self.0.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries `0..len` written as `"k<i>": <i>`, failing or panicking at
    /// one of them if asked.
    struct Numbers {
        len: usize,
        fail_at: Option<usize>,
        panic_at: Option<usize>,
    }

    impl Entries for Numbers {
        fn len(&self) -> usize {
            self.len
        }

        fn write(&self, range: Range<usize>, out: &mut Vec<u8>) -> serde_json::Result<()> {
            for index in range {
                assert!(self.panic_at != Some(index), "entry {index} panics");
                if self.fail_at == Some(index) {
                    return Err(serde::ser::Error::custom(format!("entry {index} fails")));
                }
                if index > 0 {
                    out.push(b',');
                }
                write_newline_indent(out, 2);
                write_pretty(out, 2, &format!("k{index}"))?;
                out.extend_from_slice(b": ");
                write_pretty(out, 2, &index)?;
            }
            Ok(())
        }
    }

    fn numbers(len: usize, fail_at: Option<usize>, panic_at: Option<usize>) -> Vec<Section<'static>> {
        vec![
            Section::Fields { first_in_document: true, fields: vec![("first", &1u8)] },
            Section::Map { key: "numbers", entries: Box::new(Numbers { len, fail_at, panic_at }) },
            Section::Fields { first_in_document: false, fields: vec![("last", &"end")] },
        ]
    }

    fn expected(len: usize) -> Vec<u8> {
        let mut text = b"{\n  \"first\": 1,\n  \"numbers\": {".to_vec();
        for index in 0..len {
            if index > 0 {
                text.push(b',');
            }
            text.extend_from_slice(format!("\n    \"k{index}\": {index}").as_bytes());
        }
        text.extend_from_slice(b"\n  },\n  \"last\": \"end\"\n}");
        text
    }

    fn settings(helpers: usize) -> Settings {
        Settings { helpers, piece_bytes: 64, window: 3 }
    }

    #[test]
    fn pieces_come_out_in_order_whatever_the_thread_count() {
        for helpers in [0, 1, 3, 8] {
            let mut out = Vec::new();
            write_sections(&numbers(5_000, None, None), &mut out, settings(helpers)).unwrap();
            assert!(out == expected(5_000), "{helpers} helpers");
        }
    }

    #[test]
    fn a_failing_piece_stops_everyone_with_its_error() {
        for helpers in [0, 1, 3] {
            let mut out = Vec::new();
            let err = write_sections(&numbers(5_000, Some(3_333), None), &mut out, settings(helpers)).unwrap_err();
            assert!(err.to_string().contains("entry 3333 fails"), "{err}");
            // Nothing at or after the failed piece was written.
            assert!(!String::from_utf8(out).unwrap().contains("\"k3333\""));
        }
    }

    #[test]
    fn a_panicking_helper_does_not_leave_the_writer_waiting() {
        for helpers in [1, 3] {
            let result = std::panic::catch_unwind(|| {
                write_sections(&numbers(5_000, None, Some(2_500)), &mut Vec::new(), settings(helpers))
            });
            // The panic comes back through the scope, or the writer hit
            // the entry itself and panicked on its own thread.
            assert!(result.is_err());
        }
    }

    /// A sink that fails after `left` bytes.
    struct FailingSink {
        left: usize,
    }

    impl Write for FailingSink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if bytes.len() > self.left {
                return Err(io::Error::other("disk full"));
            }
            self.left -= bytes.len();
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_writer_stops_the_helpers() {
        for helpers in [0, 1, 3] {
            let err = write_sections(&numbers(5_000, None, None), &mut FailingSink { left: 10_000 }, settings(helpers))
                .unwrap_err();
            assert_eq!(err.to_string(), "disk full");
        }
    }
}
