//! Reading inference request payloads (reducer core §7.2) at little more
//! than the cost of reading their bytes.
//!
//! Every request of a thread repeats the whole conversation so far: a long
//! session is hundreds of megabytes of the same items, sent again and again.
//! Normalization depends only on an item's bytes and the payload id, so the
//! thread's last request is kept: its text and item layout by the
//! `RequestReader`, the candidates of its items by the reducer
//! (`CandidateMemos`). The next request then reuses the candidate of every
//! item whose bytes are unchanged and parses only the items it adds.
//! Usually a request even starts with the previous one, byte for byte, up to
//! the end of its last item; then that part is compared, not parsed at all.
//!
//! The two halves may run on different threads (see `read_ahead`): the
//! reader hands each request over as a `ReadRequest` that names known items
//! by their index in the last request and says how both memos change
//! (`MemoChange`), so they stay in step without sharing anything.
//!
//! The fast path must read every payload exactly as the `Value` path does,
//! errors included. It steps aside (and the `Value` path reads the payload)
//! whenever it cannot be sure of that; see `RequestReader::read_fast`.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde::de::{Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::conversation::{normalize_items, normalize_listed_item, Candidate};
use super::Reducer;
use crate::bundle::{TraceBundle, PARSER_MAX_DEPTH};
use crate::compat::Rules;
use crate::error::{Error, Result};
use crate::format::RawPayloadRef;
use crate::limits::json_depth_exceeds;

/// What request reduction reads of a request payload.
pub(crate) struct Request {
    /// The normalized input items, in order.
    pub candidates: Vec<Candidate>,
    /// The last `previous_response_id`, when it is a string.
    pub previous_response_id: Option<String>,
    /// Whether the candidates become the thread's memo once reduced.
    remember: bool,
}

/// A request payload as the reader hands it to the reducer.
pub(crate) struct ReadRequest {
    /// The payload's size, counted against the bundle limit before `body`
    /// is looked at (the `Value` path's order of errors).
    pub size: usize,
    /// The input items, or the first error in reading them.
    body: Result<RequestBody>,
}

struct RequestBody {
    /// The items that yield a candidate, in order.
    items: Vec<RequestItem>,
    previous_response_id: Option<String>,
    memo: MemoChange,
}

enum RequestItem {
    /// The same bytes as the item with this candidate index in the thread's
    /// last request (the memo).
    Known(usize),
    New(Candidate),
}

/// What becomes of the thread's memo, on both sides, after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemoChange {
    /// A full request read by the fast path becomes the memo.
    Replace,
    /// An incremental request holds only the latest items: the memo stays
    /// for the next full request.
    Keep,
    /// A request read by the `Value` path leaves no memo.
    Drop,
}

/// The reader's half: per thread, the last request's text and item layout;
/// and a buffer for reading the next request into.
pub(crate) struct RequestReader {
    by_thread: HashMap<String, RequestMemo>,
    spare: Vec<u8>,
    /// The fast path leaves the nesting limit to serde_json, which is only
    /// right for a bundle limit at least as high as serde_json's.
    fast_path: bool,
    rules: Rules,
}

/// The reducer's half: per thread, the candidates of the last request's
/// items, indexed by `MemoItem::candidate`; `None` once taken.
#[derive(Default)]
pub(crate) struct CandidateMemos {
    by_thread: HashMap<String, Vec<Option<Candidate>>>,
}

#[cfg(test)]
thread_local! {
    /// Tests compare the fast path with the `Value` path...
    static VALUE_PATH_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// ... and check that the fast path reuses items.
    static REUSED_ITEMS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[derive(Default)]
struct RequestMemo {
    /// The request's bytes, known to be UTF-8.
    text: Vec<u8>,
    items: Vec<MemoItem>,
    /// Whether `text` up to the end of its last item can stand for the
    /// same bytes at the start of the next request (see `resume`).
    resumable: bool,
    /// Where the fields after `input` start (just after its closing
    /// bracket), when `resumable`.
    tail: Option<usize>,
    /// The offsets in the tail of the commas before its members, when
    /// none of them is a `previous_response_id` (see `resume_between`).
    tail_members: Vec<usize>,
}

/// One input item of a request read by the fast path.
struct MemoItem {
    /// The item's bytes in the request text.
    range: Range<usize>,
    /// Its index among the request's candidates; `None` when it yields no
    /// candidate (`additional_tools`).
    candidate: Option<usize>,
}

/// An input item during the fast path: known from the memo (with its
/// candidate index there), or its value parsed now.
enum Slot {
    Known(Option<usize>),
    New(Value),
}

/// How the fast path ended: read, or left to the `Value` path with the
/// payload's bytes.
enum Fast {
    Read(ReadRequest),
    Declined(Vec<u8>),
}

impl RequestReader {
    /// Created on the replaying thread (tests choose the path there).
    pub(crate) fn new(bundle: &TraceBundle, rules: Rules) -> Self {
        #[cfg(test)]
        let fast_path = !VALUE_PATH_ONLY.get();
        #[cfg(not(test))]
        let fast_path = true;
        RequestReader {
            by_thread: HashMap::new(),
            spare: Vec::new(),
            fast_path: fast_path && bundle.limits().max_json_depth >= PARSER_MAX_DEPTH,
            rules,
        }
    }

    /// Reads the request payload of an inference in `thread`. Errors here
    /// are those before the size is counted (reading, parsing).
    pub(crate) fn read(&mut self, bundle: &TraceBundle, payload: &RawPayloadRef, thread: &str) -> Result<ReadRequest> {
        let mut bytes = std::mem::take(&mut self.spare);
        bundle.read_payload_into(payload, &mut bytes)?;
        if self.fast_path {
            let memo = self.by_thread.remove(thread).unwrap_or_default();
            match self.read_fast(payload, thread, bytes, memo) {
                Fast::Read(request) => return Ok(request),
                Fast::Declined(unread) => bytes = unread,
            }
        }
        let body = bundle.parse_payload(payload, &bytes)?;
        let size = bytes.len();
        self.spare = bytes;
        Ok(ReadRequest { size, body: value_body(&body, &payload.raw_payload_id, &self.rules) })
    }

    /// Frees the memo of a thread that ended: with many threads, memos
    /// would otherwise hold the last request of each to the end. (A later
    /// request of the thread would just be read without one.)
    pub(crate) fn forget(&mut self, thread: &str) {
        self.by_thread.remove(thread);
    }

    /// The fast path. It reads a payload exactly when the `Value` path
    /// would parse it, and then reads the same:
    ///
    /// * the payload is UTF-8, as any JSON text serde_json parses;
    /// * `RequestParts` parses every field but `input` as a `Value` would
    ///   (`Checked`), and takes the text of each input item after a
    ///   syntax-only scan;
    /// * an item whose bytes are those of the memo's item at its index was
    ///   parsed with that request, at the same depth; other items are
    ///   parsed now, as `Value`s, and checked to nest no deeper than
    ///   serde_json allows at their depth in the payload (`fast_path` is
    ///   only set where the bundle's limit is not lower);
    /// * any doubt declines: a payload that is not an object, an `input`
    ///   that is not an array or appears twice, serde_json's reserved keys.
    ///
    /// Items are normalized once the payload is known to parse; the first
    /// error among them goes to the reducer, which counts the bytes first.
    ///
    /// Each memo item names a distinct candidate index and each request item
    /// at most one memo item, so every candidate a `Known` item names is
    /// still in the reducer's memo when it is taken.
    fn read_fast(&mut self, payload: &RawPayloadRef, thread: &str, text: Vec<u8>, memo: RequestMemo) -> Fast {
        let split = resume(&text, &memo).or_else(|| split_items(&text, &memo));
        let Some(Split { items, previous_response_id, resumable, tail_members: kept_members }) = split else {
            self.spare = memo.text;
            return Fast::Declined(text);
        };
        let mut slots = Vec::with_capacity(items.len());
        for (range, known) in items {
            let slot = match known.map(|index| memo.items.get(index).map(|item| item.candidate)) {
                Some(Some(candidate)) => Slot::Known(candidate),
                Some(None) => return Fast::Declined(text),
                None => {
                    let item = &text[range.clone()];
                    // Items sit two levels deep: in the request object, in `input`.
                    if json_depth_exceeds(item, PARSER_MAX_DEPTH - 2) {
                        return Fast::Declined(text);
                    }
                    match serde_json::from_slice::<Value>(item) {
                        Ok(value) => Slot::New(value),
                        Err(_) => return Fast::Declined(text),
                    }
                }
            };
            slots.push((range, slot));
        }
        let size = text.len();
        let pid = payload.raw_payload_id.as_str();
        let mut request_items = Vec::with_capacity(slots.len());
        let mut memo_items = Vec::with_capacity(slots.len());
        for (range, slot) in slots {
            let item = match slot {
                Slot::Known(None) => None,
                Slot::Known(Some(at)) => Some(RequestItem::Known(at)),
                Slot::New(value) => match normalize_listed_item(&value, pid, &self.rules) {
                    Ok(candidate) => candidate.map(RequestItem::New),
                    Err(error) => return Fast::Read(ReadRequest { size, body: Err(error) }),
                },
            };
            let candidate = item.map(|item| {
                request_items.push(item);
                request_items.len() - 1
            });
            memo_items.push(MemoItem { range, candidate });
        }
        let memo_change = if previous_response_id.is_some() {
            self.by_thread.insert(thread.to_string(), memo);
            self.spare = text;
            MemoChange::Keep
        } else {
            // The replaced memo's text serves the next read.
            self.spare = memo.text;
            let last = memo_items.last().map(|item| item.range.clone());
            let resumable = resumable && last.as_ref().is_some_and(|range| closes_token(&text, range));
            let tail = last.filter(|_| resumable).and_then(|range| after_closing_bracket(&text, range.end));
            let tail_members = match (tail, kept_members) {
                (Some(_), Some(members)) => members,
                (Some(tail), None) => member_commas(&text[tail..]),
                (None, _) => Vec::new(),
            };
            let memo = RequestMemo { text, items: memo_items, resumable, tail, tail_members };
            self.by_thread.insert(thread.to_string(), memo);
            MemoChange::Replace
        };
        let body = RequestBody { items: request_items, previous_response_id, memo: memo_change };
        Fast::Read(ReadRequest { size, body: Ok(body) })
    }
}

/// The `Value` path's reading of a parsed request.
fn value_body(body: &Value, pid: &str, rules: &Rules) -> Result<RequestBody> {
    let input = body
        .get("input")
        .ok_or_else(|| Error::reduce(format!("inference request payload {pid} did not contain input")))?
        .as_array()
        .ok_or_else(|| Error::reduce(format!("inference request payload {pid} had non-array input")))?;
    Ok(RequestBody {
        items: normalize_items(input, pid, rules)?.into_iter().map(RequestItem::New).collect(),
        previous_response_id: body.get("previous_response_id").and_then(Value::as_str).map(str::to_string),
        memo: MemoChange::Drop,
    })
}

impl Reducer {
    /// The request read ahead for this event, with the reference's errors:
    /// read and parse errors, then the bundle limit, then the items'.
    pub(super) fn read_request(&mut self, payload: &RawPayloadRef, thread: &str) -> Result<Request> {
        let read = self
            .ready
            .take_request(payload)
            .ok_or_else(|| Error::reduce(format!("request payload {} was not read ahead", payload.raw_payload_id)))??;
        self.count_payload_bytes(payload, read.size)?;
        let body = read.body?;
        let mut memo = self.candidate_memos.by_thread.remove(thread).unwrap_or_default();
        let keep = body.memo == MemoChange::Keep;
        let pid = payload.raw_payload_id.as_str();
        let mut candidates = Vec::with_capacity(body.items.len());
        for item in body.items {
            candidates.push(match item {
                RequestItem::New(candidate) => candidate,
                RequestItem::Known(at) => {
                    #[cfg(test)]
                    REUSED_ITEMS.set(REUSED_ITEMS.get() + 1);
                    let kept = memo.get_mut(at).and_then(|kept| if keep { kept.clone() } else { kept.take() });
                    let mut candidate = kept.expect("the reader names only candidates the memo still holds");
                    candidate.move_to_payload(pid);
                    candidate
                }
            });
        }
        if keep {
            self.candidate_memos.by_thread.insert(thread.to_string(), memo);
        }
        let remember = body.memo == MemoChange::Replace;
        Ok(Request { candidates, previous_response_id: body.previous_response_id, remember })
    }

    /// Keeps a reduced request's candidates as its thread's memo.
    pub(super) fn remember_request(&mut self, thread: &str, request: Request) {
        if request.remember {
            let candidates = request.candidates.into_iter().map(Some).collect();
            self.candidate_memos.by_thread.insert(thread.to_string(), candidates);
        }
    }

    /// Frees the candidates of a thread that ended (see `RequestReader::forget`).
    pub(super) fn forget_requests(&mut self, thread: &str) {
        self.candidate_memos.by_thread.remove(thread);
    }
}

/// A request's input items.
struct Split {
    /// Each item's range in the text, with the index of the memo's item of
    /// the same bytes if it is known.
    items: Vec<(Range<usize>, Option<usize>)>,
    previous_response_id: Option<String>,
    /// No key before `input` that reduction reads.
    resumable: bool,
    /// The tail's member commas, when `resume_between` found them.
    tail_members: Option<Vec<usize>>,
}

/// Splits the whole text into items; an item is known when its bytes equal
/// the memo's item at the same index.
fn split_items(text: &[u8], memo: &RequestMemo) -> Option<Split> {
    let text = std::str::from_utf8(text).ok()?;
    let parts = serde_json::from_str::<RequestParts>(text).ok()?;
    let mut items = Vec::with_capacity(parts.items.len());
    for (index, item) in parts.items.iter().enumerate() {
        let range = range_within(text, item.get())?;
        let same = memo
            .items
            .get(index)
            .is_some_and(|known| memo.text.get(known.range.clone()) == Some(item.get().as_bytes()));
        items.push((range, same.then_some(index)));
    }
    Some(Split {
        items,
        previous_response_id: parts.previous_response_id,
        resumable: parts.plain_before_input,
        tail_members: None,
    })
}

/// The common case: the text starts with the memo's text up to the end of
/// its last item. The parser is then, at that point, where it was in the
/// memo's text: in the request object, in `input`, after an item that
/// closed with a bracket or quote, having passed only keys it ignores. So
/// the rest parses as it does after a stand-in start that leaves the parser
/// in that same place, and the part before was parsed (and found UTF-8)
/// with the memo.
///
/// Most often the text also ends with the memo's fields after `input` (the
/// instructions and tool schemas, say), byte for byte: then only the new
/// items between are parsed (`resume_between`).
fn resume(text: &[u8], memo: &RequestMemo) -> Option<Split> {
    if !memo.resumable {
        return None;
    }
    let end = memo.items.last()?.range.end;
    if text.get(..end)? != memo.text.get(..end)? {
        return None;
    }
    if let Some(split) = resume_between(text, memo, end) {
        return Some(split);
    }
    resume_with(memo, end, &text[end..], "").map(|(split, _)| split)
}

/// An object whose `input` holds one item that closes with a bracket.
const STAND_IN: &str = r#"{"input":[{}"#;

/// `resume` when the text also ends with a tail of the memo's length: the
/// bytes after the memo's `input` array. What lies between (the new items
/// and the closing bracket) is parsed after the stand-in start and followed
/// by a closing brace. If that leaves the parser just after the `input`
/// array, where the tail began in the memo, the tail's members that are
/// the memo's byte for byte parse as they did there, so they need no
/// parsing: they read no `previous_response_id` then (the memo is a full
/// request, and `tail_members` lists none). Only the members from the first
/// that differs are parsed (Codex writes `client_metadata`, a map, in no
/// fixed order). Anything but the array's end between, such as a key,
/// declines: a key in the tail could then override it.
fn resume_between(text: &[u8], memo: &RequestMemo, end: usize) -> Option<Split> {
    let tail = memo.text.get(memo.tail?..)?;
    let tail_start = text.len().checked_sub(tail.len())?;
    let (between, new_tail) = (text.get(end..tail_start)?, &text[tail_start..]);
    let same = common_prefix(new_tail, tail);
    // The comma before the first member that changed, if one did.
    let changed = match memo.tail_members.partition_point(|&comma| comma <= same) {
        _ if same == tail.len() => None,
        0 => return None,
        kept => Some(kept - 1),
    };
    // The tail starts after an ASCII bracket, so on a character boundary.
    let (mut split, only_input) = resume_with(memo, end, between, "}")?;
    if !only_input {
        return None;
    }
    let Some(changed) = changed else {
        split.tail_members = Some(memo.tail_members.clone());
        return Some(split);
    };
    // After that comma's member the parser is in the object, past a
    // member, as after the stand-in's `input`.
    let from = memo.tail_members[changed];
    let rest = [r#"{"input":[]"#, std::str::from_utf8(&new_tail[from..]).ok()?].concat();
    let parts = serde_json::from_str::<RequestParts>(&rest).ok()?;
    split.previous_response_id = parts.previous_response_id;
    let rest_members = member_commas(&new_tail[from..]);
    // Empty: a changed member is a `previous_response_id`.
    let mut members = if rest_members.is_empty() { Vec::new() } else { memo.tail_members[..changed].to_vec() };
    members.extend(rest_members.iter().map(|comma| from + comma));
    split.tail_members = Some(members);
    Some(split)
}

/// How many bytes `a` and `b` have in common at their start: compared a
/// block at a time (each a `memcmp`), then byte by byte in the block that
/// differs.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let len = a.len().min(b.len());
    let mut at = 0;
    while at + BLOCK <= len && a[at..at + BLOCK] == b[at..at + BLOCK] {
        at += BLOCK;
    }
    at + a[at..len].iter().zip(&b[at..len]).take_while(|(x, y)| x == y).count()
}

/// The offsets of the commas that separate the top-level members in
/// `tail`, text that starts inside an object, between members, and that has
/// been parsed as JSON already. Empty when a member is a
/// `previous_response_id`: such a tail is parsed again in full.
fn member_commas(tail: &[u8]) -> Vec<usize> {
    let mut commas = Vec::new();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (at, &byte) in tail.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => break,
            b'}' | b']' => depth -= 1,
            b',' if depth == 0 => commas.push(at),
            _ => {}
        }
    }
    let names_previous_response_id = |&comma: &usize| {
        let key = tail[comma + 1..].iter().position(|byte| *byte == b'"').map(|quote| comma + 1 + quote);
        let mut keys = serde_json::Deserializer::from_slice(&tail[key.unwrap_or(tail.len())..]).into_iter::<String>();
        matches!(keys.next(), Some(Ok(key)) if key == "previous_response_id")
    };
    if commas.iter().any(names_previous_response_id) {
        commas.clear();
    }
    commas
}

/// Parses `rest`, text that follows the memo's last item (which ends at
/// `end`), after the stand-in start and followed by `close`. The split has
/// the memo's items, then the new ones at their place in the text; the
/// flag says whether `input` was the only key.
fn resume_with(memo: &RequestMemo, end: usize, rest: &[u8], close: &str) -> Option<(Split, bool)> {
    let stand_in = [STAND_IN, std::str::from_utf8(rest).ok()?, close].concat();
    let parts = serde_json::from_str::<RequestParts>(&stand_in).ok()?;
    let mut items: Vec<_> =
        memo.items.iter().enumerate().map(|(index, item)| (item.range.clone(), Some(index))).collect();
    for item in parts.items.iter().skip(1) {
        let range = range_within(&stand_in, item.get())?;
        items.push((range.start - STAND_IN.len() + end..range.end - STAND_IN.len() + end, None));
    }
    let split = Split { items, previous_response_id: parts.previous_response_id, resumable: true, tail_members: None };
    Some((split, parts.only_input))
}

/// Just after the bracket that closes an array whose last element ends at
/// `end`, if only whitespace comes between.
fn after_closing_bracket(text: &[u8], end: usize) -> Option<usize> {
    let offset = text.get(end..)?.iter().position(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))?;
    (text[end + offset] == b']').then_some(end + offset + 1)
}

/// Whether the item at `range` ends with a bracket or quote: a token that
/// no following byte can extend (unlike a number).
fn closes_token(text: &[u8], range: &Range<usize>) -> bool {
    matches!(text.get(range.end.wrapping_sub(1)), Some(b'}' | b']' | b'"'))
}

/// Where `part`, a slice of `text`, lies in it.
fn range_within(text: &str, part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let end = start + part.len();
    (end <= text.len()).then_some(start..end)
}

/// The two fields of a request payload that reduction reads, with the
/// input items as unparsed text (scanned for syntax only). Every other
/// field is `Checked`, so that all but the items is accepted exactly as a
/// `Value` parse accepts it.
struct RequestParts<'t> {
    items: Vec<&'t RawValue>,
    previous_response_id: Option<String>,
    /// No `previous_response_id` key came before `input`.
    plain_before_input: bool,
    /// `input` was the only key.
    only_input: bool,
}

impl<'de> Deserialize<'de> for RequestParts<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_map(RequestPartsVisitor)
    }
}

struct RequestPartsVisitor;

impl<'de> Visitor<'de> for RequestPartsVisitor {
    type Value = RequestParts<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an inference request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut items = None;
        let mut previous_response_id = None;
        let mut plain_before_input = true;
        let mut only_input = true;
        while let Some(key) = map.next_key::<Key>()? {
            only_input &= matches!(key, Key::Input);
            match key {
                Key::Input if items.is_none() => items = Some(map.next_value::<Vec<&'de RawValue>>()?),
                Key::Input => return Err(A::Error::custom("duplicate input")),
                // The last one counts, as in a `Value`.
                Key::PreviousResponseId => {
                    plain_before_input &= items.is_some();
                    previous_response_id = match map.next_value::<Value>()? {
                        Value::String(id) => Some(id),
                        _ => None,
                    }
                }
                Key::Reserved => return Err(A::Error::custom("reserved key")),
                Key::Other => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        let items = items.ok_or_else(|| A::Error::custom("no input"))?;
        Ok(RequestParts { items, previous_response_id, plain_before_input, only_input })
    }
}

/// serde_json gives object keys with this prefix a meaning of its own: the
/// first key of an object can turn it into a number or a raw value.
const RESERVED_KEY_PREFIX: &str = "$serde_json::private::";
/// The reserved key of a number, which every number is parsed through
/// (serde_json's `arbitrary_precision`).
const NUMBER_KEY: &str = "$serde_json::private::Number";

/// A top-level key of a request.
enum Key {
    Input,
    PreviousResponseId,
    Reserved,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> std::result::Result<Key, E> {
        Ok(match key {
            "input" => Key::Input,
            "previous_response_id" => Key::PreviousResponseId,
            reserved if reserved.starts_with(RESERVED_KEY_PREFIX) => Key::Reserved,
            _ => Key::Other,
        })
    }
}

/// Any JSON value, accepted exactly when `Value` accepts it (same syntax,
/// escapes, nesting limit and reserved keys), but kept nowhere: most of a
/// request that is not input (instructions, tool schemas) is read only to
/// know that it parses.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> std::result::Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    /// As `Value` does: a number (which serde_json hands over as an object
    /// with the number key) ends the object after its first value; the
    /// raw-value key declines.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Checked, A::Error> {
        match map.next_key::<FirstKey>()? {
            None => return Ok(Checked),
            Some(FirstKey::Number) => {
                let number = map.next_value::<String>()?;
                number.parse::<serde_json::Number>().map_err(A::Error::custom)?;
                return Ok(Checked);
            }
            Some(FirstKey::Reserved) => return Err(A::Error::custom("reserved key")),
            Some(FirstKey::Other) => map.next_value::<Checked>()?,
        };
        while map.next_key::<AnyKey>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

/// The first key of an object, which `Value` classifies.
enum FirstKey {
    Number,
    Reserved,
    Other,
}

impl<'de> Deserialize<'de> for FirstKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_str(FirstKeyVisitor)
    }
}

struct FirstKeyVisitor;

impl Visitor<'_> for FirstKeyVisitor {
    type Value = FirstKey;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> std::result::Result<FirstKey, E> {
        Ok(match key {
            NUMBER_KEY => FirstKey::Number,
            reserved if reserved.starts_with(RESERVED_KEY_PREFIX) => FirstKey::Reserved,
            _ => FirstKey::Other,
        })
    }
}

/// Any later key of an object: a string, kept nowhere.
struct AnyKey;

impl<'de> Deserialize<'de> for AnyKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_str(AnyKeyVisitor)
    }
}

struct AnyKeyVisitor;

impl Visitor<'_> for AnyKeyVisitor {
    type Value = AnyKey;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a key")
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<AnyKey, E> {
        Ok(AnyKey)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    /// Replays `root` and describes the outcome: the state JSON, or the
    /// error. Also returns how many items the fast path reused.
    fn outcome(root: &Path, value_path_only: bool) -> (std::result::Result<String, Error>, usize) {
        VALUE_PATH_ONLY.set(value_path_only);
        REUSED_ITEMS.set(0);
        let outcome = crate::reducer::replay_bundle(root).map(|trace| trace.to_json());
        VALUE_PATH_ONLY.set(false);
        (outcome, REUSED_ITEMS.get())
    }

    /// Both paths agree on `root`; returns whether the replay succeeded and
    /// how many items the fast path reused.
    fn assert_paths_agree(root: &Path, what: &str) -> (bool, usize) {
        let (fast, reused) = outcome(root, false);
        let (value, _) = outcome(root, true);
        if fast != value {
            // The first differing line of the two outcomes says enough.
            let describe = |outcome: &std::result::Result<String, Error>| match outcome {
                Ok(state) => state.clone(),
                Err(error) => format!("{:?}: {error}", error.kind),
            };
            let (fast, value) = (describe(&fast), describe(&value));
            let at = fast.lines().zip(value.lines()).position(|(a, b)| a != b).unwrap_or(0);
            panic!(
                "fast and Value paths differ for {what} at line {at}:\n  fast:  {:?}\n  value: {:?}",
                fast.lines().nth(at),
                value.lines().nth(at)
            );
        }
        (fast.is_ok(), reused)
    }

    /// A bundle directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let root = std::env::temp_dir().join(format!("rollout-trace-request-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("payloads")).unwrap();
            Scratch(root)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// One inference call: its thread, request and response payload texts.
    #[derive(Clone)]
    struct Call {
        thread: &'static str,
        request: Vec<u8>,
        response: String,
    }

    /// Writes a bundle of two threads (one turn each) making `calls`.
    fn write_bundle(root: &Path, calls: &[Call]) {
        std::fs::write(
            root.join("manifest.json"),
            r#"{"schema_version":1,"trace_id":"t1","rollout_id":"r1","root_thread_id":"th","started_at_unix_ms":1,"raw_event_log":"trace.jsonl","payloads_dir":"payloads"}"#,
        )
        .unwrap();
        let mut lines = Vec::new();
        let mut event = |thread: Option<&str>, payload: String| {
            let seq = lines.len() + 1;
            let context = match thread {
                Some(thread) => format!(r#""thread_id":"{thread}","codex_turn_id":"turn-{thread}""#),
                None => r#""thread_id":null,"codex_turn_id":null"#.to_string(),
            };
            lines.push(format!(
                r#"{{"schema_version":1,"seq":{seq},"wall_time_unix_ms":{},"rollout_id":"r1",{context},"payload":{payload}}}"#,
                1000 + seq
            ));
        };
        for (thread, path) in [("th", "/root"), ("th2", "/root/helper")] {
            event(
                None,
                format!(
                    r#"{{"type":"thread_started","thread_id":"{thread}","agent_path":"{path}","metadata_payload":null}}"#
                ),
            );
            event(
                Some(thread),
                format!(r#"{{"type":"codex_turn_started","codex_turn_id":"turn-{thread}","thread_id":"{thread}"}}"#),
            );
        }
        let payload_ref = |n: usize, kind: &str| {
            format!(r#"{{"raw_payload_id":"raw_payload:{n}","kind":{{"type":"{kind}"}},"path":"payloads/{n}.json"}}"#)
        };
        for (k, call) in calls.iter().enumerate() {
            let (request, response) = (2 * k + 1, 2 * k + 2);
            std::fs::write(root.join(format!("payloads/{request}.json")), &call.request).unwrap();
            std::fs::write(root.join(format!("payloads/{response}.json")), &call.response).unwrap();
            let thread = call.thread;
            event(
                Some(thread),
                format!(
                    r#"{{"type":"inference_started","inference_call_id":"inf-{k}","thread_id":"{thread}","codex_turn_id":"turn-{thread}","model":"m","provider_name":"p","request_payload":{}}}"#,
                    payload_ref(request, "inference_request")
                ),
            );
            event(
                Some(thread),
                format!(
                    r#"{{"type":"inference_completed","inference_call_id":"inf-{k}","response_id":"resp-{k}","upstream_request_id":null,"response_payload":{}}}"#,
                    payload_ref(response, "inference_response")
                ),
            );
        }
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        std::fs::write(root.join("trace.jsonl"), text).unwrap();
    }

    /// Calls alternating between two threads, each request repeating its
    /// thread's conversation: every item kind the fast path meets, including
    /// `additional_tools`, payload-ref and JSON parts, numbers and escapes.
    fn conversation(pretty: bool) -> Vec<Call> {
        let mut histories: Vec<Vec<Value>> = vec![Vec::new(), Vec::new()];
        let mut calls = Vec::new();
        for k in 0..10 {
            let (thread, history) = if k % 2 == 0 { ("th", &mut histories[0]) } else { ("th2", &mut histories[1]) };
            if history.is_empty() {
                history.push(serde_json::json!({"type": "additional_tools", "tools": [{"name": "extra"}]}));
                history.push(serde_json::json!({"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": format!("task of {thread}: caf\u{e9} \"quoted\"")},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}));
            }
            if k % 4 == 3 {
                history.push(serde_json::json!({"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": format!("more {k}")}]}));
            }
            let input = Value::Array(history.clone());
            let request = if pretty {
                let parameters: Value = serde_json::from_str(r#"{"minimum":0.50,"big":1e400}"#).unwrap();
                let body = serde_json::json!({"model": "m", "instructions": "be brief", "input": input,
                    "tools": [{"type": "function", "name": "exec", "parameters": parameters}]});
                serde_json::to_string_pretty(&body).unwrap()
            } else {
                format!(
                    r#"{{"model":"m","instructions":"be brief \u00e9","input":{input},"tools":[{{"type":"function","name":"exec","parameters":{{"minimum":0.50,"big":1e400}}}}],"stream":true}}"#
                )
            };
            let outputs = vec![
                serde_json::json!({"type": "reasoning", "summary": [{"type": "summary_text", "text": format!("think {k}")}],
                    "encrypted_content": format!("ENC{k}")}),
                serde_json::json!({"type": "function_call", "name": "exec", "call_id": format!("call_{k}"),
                    "arguments": format!("{{\"cmd\":\"ls {k}\",\"n\":-0}}")}),
                serde_json::json!({"type": "local_shell_call", "call_id": format!("sh_{k}"), "action": {"n": 1.50}}),
            ];
            let response = serde_json::json!({"response_id": format!("resp-{k}"), "upstream_request_id": null,
                "token_usage": null, "output_items": outputs});
            history.extend(outputs);
            history.push(serde_json::json!({"type": "function_call_output", "call_id": format!("call_{k}"),
                "output": format!("output {k}")}));
            calls.push(Call { thread, request: request.into_bytes(), response: response.to_string() });
        }
        calls
    }

    #[test]
    fn fast_path_reuses_repeated_items_and_agrees_with_the_value_path() {
        for pretty in [false, true] {
            let scratch = Scratch::new(if pretty { "base-pretty" } else { "base" });
            write_bundle(&scratch.0, &conversation(pretty));
            let (ok, reused) = assert_paths_agree(&scratch.0, "the base conversation");
            assert!(ok);
            assert!(reused > 40, "only {reused} items reused");
        }
    }

    type Edit = Box<dyn Fn(&str) -> Vec<u8>>;

    #[test]
    fn an_incremental_request_leaves_the_memo_to_the_next_full_one() {
        let scratch = Scratch::new("incremental");
        let mut calls = conversation(false);
        // Call 6 (thread `th`) sends only what followed call 4's response.
        calls[6].request = br#"{"previous_response_id":"resp-4","input":[{"type":"function_call_output","call_id":"call_4","output":"output 4"}]}"#.to_vec();
        let reused_by = |count: usize| {
            write_bundle(&scratch.0, &calls[..count]);
            let (ok, reused) = assert_paths_agree(&scratch.0, "an incremental request");
            assert!(ok);
            reused
        };
        // Call 8 (`th` again, a full request) reuses the candidates of all
        // ten items of call 4 but `additional_tools`, which has none.
        let (eight, nine) = (reused_by(8), reused_by(9));
        assert_eq!(nine - eight, 9);
    }

    /// Edits of one request in the middle of a thread (with a memo from the
    /// thread's previous request), each meant to trip the fast path.
    fn request_edits() -> Vec<(&'static str, Edit)> {
        let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let extra = |value: String| -> Edit {
            Box::new(move |text: &str| {
                text.replacen(r#""stream":true"#, &format!(r#""stream":true,"extra":{value}"#), 1).into_bytes()
            })
        };
        let before =
            |field: String| -> Edit { Box::new(move |text: &str| format!("{{{field},{}", &text[1..]).into_bytes()) };
        let after = |field: String| -> Edit {
            Box::new(move |text: &str| format!("{},{field}}}", &text[..text.len() - 1]).into_bytes())
        };
        let new_item = |item: String| -> Edit {
            Box::new(move |text: &str| text.replacen(r#"],"tools""#, &format!(r#",{item}],"tools""#), 1).into_bytes())
        };
        // A field right after `input`, before the fields the memo had there.
        let between = |field: String| -> Edit {
            Box::new(move |text: &str| text.replacen(r#"],"tools""#, &format!(r#"],{field},"tools""#), 1).into_bytes())
        };
        let deep_item = |depth: usize| {
            format!(r#"{{"type":"function_call_output","call_id":"deep","output":{}}}"#, deep(depth - 1))
        };
        vec![
            ("unchanged", Box::new(|text: &str| text.as_bytes().to_vec())),
            ("lone surrogate in a skipped field", extra(r#""\ud800""#.into())),
            ("surrogate pair in a skipped field", extra(r#""\ud83d\ude00""#.into())),
            ("bad escape in a skipped field", extra(r#""\x""#.into())),
            ("control character in a skipped field", extra("\"a\u{1}\"".into())),
            (
                "invalid UTF-8",
                Box::new(|text: &str| {
                    let marked = text.replacen("brief", "bri\u{1}f", 1);
                    marked.bytes().map(|byte| if byte == 1 { 0xff } else { byte }).collect()
                }),
            ),
            ("bad number", extra("01".into())),
            ("huge number", extra("1e400".into())),
            ("negative zero", extra("-0".into())),
            ("nested 124 in a skipped field", extra(deep(124))),
            ("nested 125 in a skipped field", extra(deep(125))),
            ("nested 126 in a skipped field", extra(deep(126))),
            ("nested 200 in a skipped field", extra(deep(200))),
            ("number key", extra(r#"{"$serde_json::private::Number":"1"}"#.into())),
            ("number key, bad number", extra(r#"{"$serde_json::private::Number":"x"}"#.into())),
            ("number key and more", extra(r#"{"$serde_json::private::Number":"1","b":2}"#.into())),
            ("number key later", extra(r#"{"a":1,"$serde_json::private::Number":"1"}"#.into())),
            ("escaped number key", extra(r#"{"\u0024serde_json::private::Number":"2"}"#.into())),
            ("raw value key", extra(r#"{"$serde_json::private::RawValue":"[1]"}"#.into())),
            ("top-level reserved key", before(r#""$serde_json::private::Number":"1""#.into())),
            ("duplicate input", after(r#""input":[]"#.into())),
            ("escaped duplicate input", after(r#""inp\u0075t":[]"#.into())),
            ("input null after", after(r#""input":null"#.into())),
            ("previous_response_id before input", before(r#""previous_response_id":"resp-0""#.into())),
            ("previous_response_id after input", after(r#""previous_response_id":"resp-0""#.into())),
            ("previous_response_id unknown", after(r#""previous_response_id":"nope""#.into())),
            ("previous_response_id number", after(r#""previous_response_id":5"#.into())),
            ("previous_response_id deep", after(format!(r#""previous_response_id":{}"#, deep(200)))),
            ("previous_response_id twice", after(r#""previous_response_id":"nope","previous_response_id":null"#.into())),
            ("previous_response_id null, then string", after(r#""previous_response_id":null,"previous_response_id":"nope""#.into())),
            ("trailing garbage", Box::new(|text: &str| format!("{text}x").into_bytes())),
            ("trailing whitespace", Box::new(|text: &str| format!("{text} \n").into_bytes())),
            ("leading whitespace", Box::new(|text: &str| format!("\n {text}").into_bytes())),
            ("byte order mark", Box::new(|text: &str| format!("\u{feff}{text}").into_bytes())),
            ("truncated", Box::new(|text: &str| text.as_bytes()[..text.len() - 1].to_vec())),
            ("top-level array", Box::new(|text: &str| format!("[{text}]").into_bytes())),
            ("no input", Box::new(|_: &str| br#"{"model":"m"}"#.to_vec())),
            ("input object", Box::new(|_: &str| br#"{"input":{}}"#.to_vec())),
            ("input null", Box::new(|_: &str| br#"{"input":null}"#.to_vec())),
            ("empty input", Box::new(|_: &str| br#"{"input":[]}"#.to_vec())),
            ("an early item changed", Box::new(|text: &str| text.replacen("task of th:", "task of th!", 1).into_bytes())),
            ("first item dropped", Box::new(|text: &str| text.replacen(r#"{"tools":[{"name":"extra"}],"type":"additional_tools"},"#, "", 1).into_bytes())),
            ("new item with a number key", new_item(r#"{"type":"function_call_output","call_id":"n","output":{"$serde_json::private::Number":"7"}}"#.into())),
            ("new item with a raw value key", new_item(r#"{"type":"function_call_output","call_id":"n","output":{"$serde_json::private::RawValue":"[7]"}}"#.into())),
            ("new item with a lone surrogate", new_item(r#"{"type":"function_call_output","call_id":"n","output":"\udc00"}"#.into())),
            ("new item nested to the limit", new_item(deep_item(125))),
            ("new item nested past the limit", new_item(deep_item(126))),
            ("new item not an object", new_item("12".into())),
            ("new item of an unknown type", new_item(r#"{"type":"nope"}"#.into())),
            ("new additional_tools item", new_item(r#"{"type":"additional_tools"}"#.into())),
            ("new item repeating a call id", new_item(r#"{"type":"function_call_output","call_id":"call_0","output":"other"}"#.into())),
            ("previous_response_id between input and the tail", between(r#""previous_response_id":"resp-0""#.into())),
            ("previous_response_id null between input and the tail", between(r#""previous_response_id":null"#.into())),
            ("duplicate input between input and the tail", between(r#""input":[]"#.into())),
            ("reserved key between input and the tail", between(r#""$serde_json::private::Number":"1""#.into())),
            ("whitespace before the tail", Box::new(|text: &str| text.replacen(r#"],"tools""#, "] \n,\"tools\"", 1).into_bytes())),
            ("tail changed", Box::new(|text: &str| text.replacen(r#""stream":true"#, r#""stream":false"#, 1).into_bytes())),
            // Tails of the memo's length: parsed from the first member that changed.
            ("last tail member changed", Box::new(|text: &str| text.replacen(r#""stream":true"#, r#""stream":null"#, 1).into_bytes())),
            ("last tail member a number", Box::new(|text: &str| text.replacen(r#""stream":true"#, r#""stream":1234"#, 1).into_bytes())),
            ("last tail member a bad number", Box::new(|text: &str| text.replacen(r#""stream":true"#, r#""stream":0123"#, 1).into_bytes())),
            ("last tail member a second input", Box::new(|text: &str| text.replacen(r#""stream":true"#, r#""input":[1,2]"#, 1).into_bytes())),
            ("last tail member unclosed", Box::new(|text: &str| text.replacen(r#""stream":true}"#, r#""stream":[true}"#, 1).into_bytes())),
            ("first tail member changed", Box::new(|text: &str| text.replacen(r#""minimum":0.50"#, r#""minimum":0.51"#, 1).into_bytes())),
            ("first tail member too deep", Box::new(|text: &str| text.replacen(r#"{"minimum":0.50,"big":1e400}"#, &format!("{}{}{}", "[".repeat(14), "1", "]".repeat(14)), 1).into_bytes())),
        ]
    }

    #[test]
    fn edited_requests_read_the_same_on_both_paths() {
        let scratch = Scratch::new("edits");
        let base = conversation(false);
        for (what, edit) in request_edits() {
            // Call 4 is thread `th`'s third request; its memo is call 2's.
            let calls: Vec<Call> = base
                .iter()
                .enumerate()
                .map(|(k, call)| Call {
                    thread: call.thread,
                    request: if k == 4 {
                        edit(std::str::from_utf8(&call.request).unwrap())
                    } else {
                        call.request.clone()
                    },
                    response: call.response.clone(),
                })
                .collect();
            let _ = std::fs::remove_dir_all(scratch.0.join("payloads"));
            std::fs::create_dir_all(scratch.0.join("payloads")).unwrap();
            write_bundle(&scratch.0, &calls);
            assert_paths_agree(&scratch.0, what);
        }
    }

    /// A seeded xorshift generator: the same mutations in every run.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// Random byte substitutions in the fields after `input` of later
    /// requests (the tail keeps its length, so the fast path parses it from
    /// the first member that changed), and members moved: both paths read
    /// the same, and so do the requests after, whose memo lists the tail's
    /// members it inherited.
    #[test]
    fn mutated_tails_read_the_same_on_both_paths() {
        let scratch = Scratch::new("tail-mutations");
        let base = conversation(false);
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
        const JSON_BYTES: &[u8] = b"{}[],:\"\\ 0-eu";
        for round in 0..300 {
            let mut calls = base.clone();
            let k = 2 + (next() as usize) % (calls.len() - 2);
            let text = String::from_utf8(calls[k].request.clone()).unwrap();
            let tail = text.find(r#"],"tools""#).unwrap() + 1;
            calls[k].request = if round % 10 == 0 {
                // The same members in another order: the same length.
                let (before, members) = text.split_at(tail);
                let members = members.strip_prefix(',').unwrap().strip_suffix('}').unwrap();
                let (tools, stream) = members.split_at(members.find(r#","stream""#).unwrap());
                format!("{before},{},{tools}}}", &stream[1..]).into_bytes()
            } else {
                let mut bytes = text.into_bytes();
                for _ in 0..1 + next() % 3 {
                    let at = tail + (next() as usize) % (bytes.len() - tail);
                    bytes[at] = JSON_BYTES[(next() as usize) % JSON_BYTES.len()];
                }
                bytes
            };
            let _ = std::fs::remove_dir_all(scratch.0.join("payloads"));
            std::fs::create_dir_all(scratch.0.join("payloads")).unwrap();
            write_bundle(&scratch.0, &calls);
            assert_paths_agree(&scratch.0, &format!("a mutation of request {k}'s tail"));
        }
    }

    /// Random byte edits of later requests: whatever they break, both paths
    /// read the same.
    #[test]
    fn mutated_requests_read_the_same_on_both_paths() {
        let scratch = Scratch::new("mutations");
        let base = conversation(false);
        let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
        for _ in 0..300 {
            let mut calls = base.clone();
            let k = 2 + (next() as usize) % (calls.len() - 2);
            let bytes = &mut calls[k].request;
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % bytes.len();
                match next() % 4 {
                    0 => {
                        const JSON_BYTES: &[u8] = b"{}[],:\"\\ 0-eu";
                        bytes[at] = JSON_BYTES[(next() as usize) % JSON_BYTES.len()];
                    }
                    1 => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, (next() & 0xff) as u8),
                    _ => {
                        let end = (at + 1 + (next() as usize) % 16).min(bytes.len());
                        let chunk = bytes[at..end].to_vec();
                        bytes.splice(at..at, chunk);
                    }
                }
            }
            let _ = std::fs::remove_dir_all(scratch.0.join("payloads"));
            std::fs::create_dir_all(scratch.0.join("payloads")).unwrap();
            write_bundle(&scratch.0, &calls);
            assert_paths_agree(&scratch.0, &format!("a mutation of request {k}"));
        }
    }

    #[test]
    fn conformance_bundles_read_the_same_on_both_paths() {
        let shared = std::env::var_os("ROLLOUT_TRACE_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
        let Ok(cases) = std::fs::read_dir(shared.join("conformance")) else {
            eprintln!("skipping: no conformance cases");
            return;
        };
        for case in cases.flatten() {
            let bundle = case.path().join("bundle");
            if bundle.is_dir() {
                assert_paths_agree(&bundle, &bundle.display().to_string());
            }
        }
    }

    /// `Checked` accepts exactly what a `Value` parse accepts.
    #[test]
    fn checked_accepts_what_value_accepts() {
        let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let mut texts: Vec<String> = [
            "null",
            "true",
            "false",
            "tru",
            "0",
            "-0",
            "01",
            "1.",
            "1.5e",
            "1e400",
            "-1E-7",
            "123456789012345678901234567890",
            r#""a""#,
            r#""\ud800""#,
            r#""\udc00\ud800""#,
            r#""\ud83d\ude00""#,
            r#""\x""#,
            "\"\u{1}\"",
            r#""\u00e9""#,
            "[]",
            "[1,]",
            "[1 2]",
            "{}",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":1,"a":2}"#,
            r#"{1:2}"#,
            r#"{"$serde_json::private::Number":"1"}"#,
            r#"{"$serde_json::private::Number":"x"}"#,
            r#"{"$serde_json::private::Number":1}"#,
            r#"{"$serde_json::private::Number":"1","b":2}"#,
            r#"{"b":2,"$serde_json::private::Number":"1"}"#,
            r#"{"\u0024serde_json::private::Number":"1"}"#,
            r#"[{"$serde_json::private::Number":"1e5"}]"#,
            "1 2",
            " [ ] ",
        ]
        .iter()
        .map(|text| text.to_string())
        .collect();
        texts.extend([deep(126), deep(127), deep(128), format!("{{\"a\":{}}}", deep(126))]);
        for text in &texts {
            let value = serde_json::from_str::<Value>(text).is_ok();
            let checked = serde_json::from_str::<Checked>(text).is_ok();
            assert_eq!(checked, value, "{text}");
        }
        // Declining is always safe; it is where `Value` would differ.
        assert!(serde_json::from_str::<Checked>(r#"{"$serde_json::private::RawValue":"[1]"}"#).is_err());
    }

    #[test]
    fn resuming_parses_only_what_lies_between_prefix_and_an_unchanged_tail() {
        let old = r#"{"input":[{"a":1}],"tools":[{"x":[1,2]}],"stream":true}"#;
        let tail = after_closing_bracket(old.as_bytes(), 17);
        assert_eq!(tail, Some(18));
        let memo = RequestMemo {
            text: old.as_bytes().to_vec(),
            items: vec![MemoItem { range: 10..17, candidate: None }],
            resumable: true,
            tail,
            tail_members: member_commas(&old.as_bytes()[18..]),
        };
        let new = r#"{"input":[{"a":1},{"b":2}],"tools":[{"x":[1,2]}],"stream":true}"#;
        let split = resume_between(new.as_bytes(), &memo, 17).unwrap();
        assert_eq!(split.items, vec![(10..17, Some(0)), (18..25, None)]);
        assert_eq!(resume(new.as_bytes(), &memo).unwrap().items, split.items);
        // A key between could be overridden by one in the tail: the whole
        // rest is parsed instead.
        let keyed = r#"{"input":[{"a":1}],"previous_response_id":"r","tools":[{"x":[1,2]}],"stream":true}"#;
        assert!(resume_between(keyed.as_bytes(), &memo, 17).is_none());
        assert_eq!(resume(keyed.as_bytes(), &memo).unwrap().previous_response_id.as_deref(), Some("r"));
        // A changed tail, or one the text is too short to hold, is parsed.
        assert!(resume_between(br#"{"input":[{"a":1}],"tools":[],"stream":true}"#, &memo, 17).is_none());
        assert!(resume_between(br#"{"input":[{"a":1}]}"#, &memo, 17).is_none());
        // The part between must be UTF-8 on its own.
        assert!(resume_between(
            b"{\"input\":[{\"a\":1},\"\xff\"],\"tools\":[{\"x\":[1,2]}],\"stream\":true}",
            &memo,
            17
        )
        .is_none());
        assert_eq!(after_closing_bracket(b"[1 \n]", 2), Some(5));
        // A tail of the memo's length is parsed from the comma before the
        // first member that changed; the members before are the memo's.
        let reordered = r#"{"input":[{"a":1},{"b":2}],"tools":[{"x":[1,2]}],"stream":null}"#;
        let split = resume_between(reordered.as_bytes(), &memo, 17).unwrap();
        assert_eq!(split.items, vec![(10..17, Some(0)), (18..25, None)]);
        assert_eq!(split.tail_members, Some(vec![0, 22]));
        // Bytes that cannot follow a member there decline.
        assert!(resume_between(br#"{"input":[{"a":1},{"b":2}],"tools":[{"x":[1,2]}]5"stream":1}"#, &memo, 17).is_none());
        // A changed member may be a previous_response_id: it is read, and
        // the next memo's tail is parsed in full (no members listed).
        let memo = RequestMemo {
            text: br#"{"input":[{"a":1}],"tools":[1],"stream":"abcdefghijklmnopqrstuvwxyz"}"#.to_vec(),
            tail_members: member_commas(br#","tools":[1],"stream":"abcdefghijklmnopqrstuvwxyz"}"#),
            ..memo
        };
        let keyed = br#"{"input":[{"a":1}],"tools":[1],"previous_response_id":"resp-1234567"}"#;
        let split = resume_between(keyed, &memo, 17).unwrap();
        assert_eq!(split.previous_response_id.as_deref(), Some("resp-1234567"));
        assert_eq!(split.tail_members, Some(vec![]));
        assert_eq!(after_closing_bracket(b"[1,2]", 2), None);
    }

    #[test]
    fn member_commas_are_those_between_top_level_members() {
        assert_eq!(member_commas(br#","a":[1,{"b":","}],"c":"x\",\\","d":{}} ,"after":1"#), vec![0, 18, 31]);
        assert_eq!(member_commas(b"}"), Vec::<usize>::new());
        // A tail naming previous_response_id, even escaped, lists none.
        assert!(member_commas(br#","a":1,"previous_response_id":null}"#).is_empty());
        assert!(member_commas(br#","a":1, "previous\u005fresponse_id":null}"#).is_empty());
        assert_eq!(member_commas(br#","a":1,"previous_response":null}"#), vec![0, 6]);
    }

    #[test]
    fn resuming_needs_the_whole_prefix_and_a_closed_last_item() {
        let memo = |text: &str, ends: &[usize]| RequestMemo {
            text: text.as_bytes().to_vec(),
            items: ends.iter().map(|&end| MemoItem { range: 0..end, candidate: None }).collect(),
            resumable: true,
            tail: None,
            tail_members: Vec::new(),
        };
        let old = r#"{"input":[{"a":1}]}"#;
        let split = resume(br#"{"input":[{"a":1},{"b":2}],"x":1}"#, &memo(old, &[17])).unwrap();
        assert_eq!(split.items, vec![(0..17, Some(0)), (18..25, None)]);
        assert!(resume(br#"{"input":[{"a":2},{"b":2}]}"#, &memo(old, &[17])).is_none());
        assert!(resume(br#"{"input":[{"a":1}]}"#, &RequestMemo { resumable: false, ..memo(old, &[17]) }).is_none());
        assert!(resume(br#"{"input":[{"a":1}"#, &memo(old, &[17])).is_none());
        // The rest must be UTF-8 too; the part before was checked with the memo.
        assert!(resume(b"{\"input\":[{\"a\":1},\"\xff\"]}", &memo(old, &[17])).is_none());
        assert!(closes_token(old.as_bytes(), &(10..17)));
        assert!(!closes_token(br#"{"input":[12]}"#, &(10..12)));
    }
}
