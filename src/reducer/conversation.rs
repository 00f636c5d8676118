//! Conversation items: normalizing model items (reducer core §6) and
//! reconciling them with what a thread has already seen (§7).

use std::borrow::Cow;
use std::hash::BuildHasher;

use serde::Deserialize;
use serde_json::Value;

use super::items::ItemRef;
use super::{push_unique, Reducer};
use crate::compat::{ImageParts, KeyOrder, ReasoningResighting, Repair, Rules};
use crate::error::{Error, Result};
use crate::json;
use crate::model::{
    AgentMessageMetadata, ConversationBody, ConversationChannel, ConversationItem, ConversationItemKind,
    ConversationPart, ConversationRole, ProducerRef,
};

/// Producers strip this key from re-sent items; it must not affect identity.
const PASSTHROUGH_KEY: &str = "internal_chat_message_metadata_passthrough";
const ENCRYPTED_CONTENT: &str = "encrypted_content";

/// A normalized model item before it gets an identity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    pub role: ConversationRole,
    pub channel: Option<ConversationChannel>,
    pub kind: ConversationItemKind,
    pub agent_message: Option<AgentMessageMetadata>,
    pub parts: Vec<ConversationPart>,
    pub call_id: Option<String>,
    /// The image parts, by decoded bytes (only under the image-mime repair).
    pub images: Vec<ImageKey>,
}

/// An image part of a candidate and a 128-bit hash of its decoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImageKey {
    pub part: usize,
    pub digest: u128,
}

/// How a reconcile treats a position that the baseline already occupies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Full request snapshot: reuse by position, else by scan, else new.
    Full,
    /// Incremental delta or response: reuse by position only; a mismatch is
    /// an error and everything beyond the baseline is new.
    Append,
}

// ---------------------------------------------------------------------------
// Normalization (§6)

/// Normalizes a list of model items read from payload `pid` (§6.1).
pub(super) fn normalize_items(items: &[Value], pid: &str, rules: &Rules) -> Result<Vec<Candidate>> {
    let mut candidates = Vec::with_capacity(items.len());
    for item in items {
        candidates.extend(normalize_listed_item(item, pid, rules)?);
    }
    Ok(candidates)
}

/// One item of a list of model items: `None` for `additional_tools`, which
/// is not part of the conversation and takes no position.
pub(super) fn normalize_listed_item(item: &Value, pid: &str, rules: &Rules) -> Result<Option<Candidate>> {
    if rules.model_items.additional_tools && item.get("type").and_then(Value::as_str) == Some("additional_tools") {
        return Ok(None);
    }
    normalize_item(item, pid, rules).map(Some)
}

impl Candidate {
    /// Normalization depends only on the item and the payload id, which
    /// `json` and `payload_ref` parts record: a candidate normalized from
    /// the same item bytes in another payload only needs that id changed.
    pub(super) fn move_to_payload(&mut self, pid: &str) {
        for part in &mut self.parts {
            if let ConversationPart::Json { raw_payload_id, .. } | ConversationPart::PayloadRef { raw_payload_id, .. } =
                part
            {
                raw_payload_id.clear();
                raw_payload_id.push_str(pid);
            }
        }
    }
}

fn normalize_item(item: &Value, pid: &str, rules: &Rules) -> Result<Candidate> {
    let order = rules.summary_keys;
    let items = rules.model_items;
    let item_type = item
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::reduce(format!("model item in payload {pid} did not contain a string type")))?;
    let call_id = || item.get("call_id").and_then(Value::as_str).map(str::to_string);
    use ConversationChannel as Ch;
    use ConversationItemKind as K;
    use ConversationRole as R;
    let mut images = Vec::new();
    let by_bytes = rules.image_parts == ImageParts::ByDecodedBytes;
    let candidate = |role, channel, kind, parts, call_id| Candidate {
        role,
        channel,
        kind,
        agent_message: None,
        parts,
        call_id,
        images: Vec::new(),
    };
    let mut normalized = match item_type {
        "message" => {
            let role = item
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::reduce(format!("message item in payload {pid} did not contain a string role")))?;
            let role = match role {
                "system" => R::System,
                "developer" => R::Developer,
                "user" => R::User,
                "assistant" => R::Assistant,
                "tool" => R::Tool,
                other => return Err(Error::reduce(format!("unsupported message role {other} in payload {pid}"))),
            };
            let channel = match item.get("phase").and_then(Value::as_str) {
                Some("commentary") => Some(Ch::Commentary),
                Some("final_answer") => Some(Ch::Final),
                Some("summary") => Some(Ch::Summary),
                _ => None,
            };
            let parts = content_parts(item.get("content"), pid, by_bytes.then_some(&mut images));
            candidate(role, channel, K::Message, parts, None)
        }
        "agent_message" if items.agent_message => agent_message(item, pid)?,
        "reasoning" => candidate(R::Assistant, Some(Ch::Analysis), K::Reasoning, reasoning_parts(item, pid)?, None),
        "function_call" => candidate(
            R::Assistant,
            Some(Ch::Commentary),
            K::FunctionCall,
            argument_parts(item.get("arguments"), pid, order)?,
            call_id(),
        ),
        "function_call_output" => candidate(
            R::Tool,
            Some(Ch::Commentary),
            K::FunctionCallOutput,
            output_parts(item.get("output"), pid, order, by_bytes.then_some(&mut images))?,
            call_id(),
        ),
        "custom_tool_call" => {
            let parts = match item.get("input").and_then(Value::as_str) {
                None => json_parts(&strip_passthrough(item), pid, order)?,
                Some(input) if item.get("name").and_then(Value::as_str) == Some("exec") => {
                    vec![ConversationPart::Code { language: "javascript".to_string(), source: input.to_string() }]
                }
                Some(input) => vec![ConversationPart::Text { text: input.to_string() }],
            };
            candidate(R::Assistant, Some(Ch::Commentary), K::CustomToolCall, parts, call_id())
        }
        "custom_tool_call_output" => candidate(
            R::Tool,
            Some(Ch::Commentary),
            K::CustomToolCallOutput,
            output_parts(item.get("output"), pid, order, by_bytes.then_some(&mut images))?,
            call_id(),
        ),
        "tool_search_call" | "web_search_call" | "image_generation_call" | "local_shell_call" => candidate(
            R::Assistant,
            Some(Ch::Commentary),
            K::FunctionCall,
            json_parts(&strip_passthrough(item), pid, order)?,
            call_id(),
        ),
        "tool_search_output" | "mcp_tool_call_output" => candidate(
            R::Tool,
            Some(Ch::Commentary),
            K::FunctionCallOutput,
            json_parts(&strip_passthrough(item), pid, order)?,
            call_id(),
        ),
        "compaction" | "compaction_summary" => compaction_summary(item, pid)?,
        "context_compaction" if items.context_compaction => compaction_summary(item, pid)?,
        other => return Err(Error::reduce(format!("unsupported model item type {other} in payload {pid}"))),
    };
    normalized.images = images;
    Ok(normalized)
}

/// Compaction summary items (§6.11).
fn compaction_summary(item: &Value, pid: &str) -> Result<Candidate> {
    let encrypted = item.get(ENCRYPTED_CONTENT).and_then(Value::as_str).ok_or_else(|| {
        Error::reduce(format!("compaction item in payload {pid} did not contain string encrypted_content"))
    })?;
    Ok(Candidate {
        role: ConversationRole::Assistant,
        channel: Some(ConversationChannel::Summary),
        kind: ConversationItemKind::Message,
        agent_message: None,
        parts: vec![encoded(encrypted)],
        call_id: None,
        images: Vec::new(),
    })
}

fn encoded(value: &str) -> ConversationPart {
    ConversationPart::Encoded { label: ENCRYPTED_CONTENT.to_string(), value: value.to_string() }
}

fn payload_ref(label: &str, pid: &str) -> ConversationPart {
    ConversationPart::PayloadRef { label: label.to_string(), raw_payload_id: pid.to_string() }
}

/// A copy of the item without the passthrough key, for whole-item summaries.
/// Removing a key of an order-preserving map moves the last key into its
/// slot, as in every released binary; this changes what a summary in
/// source order shows (spec 05 §5.2).
fn strip_passthrough(item: &Value) -> Value {
    let mut copy = item.clone();
    if let Value::Object(map) = &mut copy {
        map.swap_remove(PASSTHROUGH_KEY);
    }
    copy
}

/// JSON body (§6.10): one `json` part summarizing the value.
fn json_parts(value: &Value, pid: &str, order: KeyOrder) -> Result<Vec<ConversationPart>> {
    let summary = json::summarize(value, order).map_err(|_| {
        Error::reduce(format!(
            "JSON summary of an item in payload {pid} would be cut at byte {} inside a UTF-8 character",
            json::SUMMARY_LIMIT_BYTES
        ))
        .with_payload(pid)
    })?;
    Ok(vec![ConversationPart::Json { summary, raw_payload_id: pid.to_string() }])
}

/// Content parts (§6.4). With `images`, each image part's key is added.
fn content_parts(content: Option<&Value>, pid: &str, mut images: Option<&mut Vec<ImageKey>>) -> Vec<ConversationPart> {
    let Some(entries) = content.and_then(Value::as_array) else {
        return vec![payload_ref("content", pid)];
    };
    let mut parts = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                if let Some(text) = entry.get("text").and_then(Value::as_str) {
                    parts.push(ConversationPart::Text { text: text.to_string() });
                }
            }
            Some(label) => {
                if let (Some(images), Some(digest)) = (images.as_deref_mut(), image_digest(entry)) {
                    images.push(ImageKey { part: parts.len(), digest });
                }
                parts.push(payload_ref(label, pid))
            }
            None => parts.push(payload_ref("content", pid)),
        }
    }
    if parts.is_empty() {
        parts.push(payload_ref("empty_content", pid));
    }
    parts
}

/// Function-call arguments (§6.7).
fn argument_parts(arguments: Option<&Value>, pid: &str, order: KeyOrder) -> Result<Vec<ConversationPart>> {
    match arguments {
        None => Ok(vec![payload_ref("payload", pid)]),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(parsed) => json_parts(&parsed, pid, order),
            Err(_) => Ok(vec![ConversationPart::Text { text: text.clone() }]),
        },
        Some(other) => json_parts(other, pid, order),
    }
}

/// Tool output (§6.8).
fn output_parts(
    output: Option<&Value>,
    pid: &str,
    order: KeyOrder,
    images: Option<&mut Vec<ImageKey>>,
) -> Result<Vec<ConversationPart>> {
    match output {
        None => Ok(vec![payload_ref("tool_output", pid)]),
        Some(Value::String(text)) => Ok(vec![ConversationPart::Text { text: text.clone() }]),
        Some(array @ Value::Array(_)) => Ok(content_parts(Some(array), pid, images)),
        Some(other) => json_parts(other, pid, order),
    }
}

/// Reasoning body (§6.6): content texts, then summaries, then the blob.
fn reasoning_parts(item: &Value, pid: &str) -> Result<Vec<ConversationPart>> {
    let fail = |what: String| Error::reduce(format!("reasoning item in payload {pid} {what}"));
    let mut parts = Vec::new();
    for (key, allowed, summary) in
        [("content", &["reasoning_text", "text"][..], false), ("summary", &["summary_text"][..], true)]
    {
        let entries = match item.get(key) {
            None => continue,
            Some(Value::Null) if !summary => continue,
            Some(Value::Array(entries)) => entries,
            Some(_) => return Err(fail(format!("had non-array {key}"))),
        };
        for entry in entries {
            let entry_type = entry
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| fail(format!("had {key} entry without string type")))?;
            if !allowed.contains(&entry_type) {
                return Err(fail(format!("had unsupported {key} type {entry_type}")));
            }
            let text = entry
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| fail(format!("had {key} entry without string text")))?
                .to_string();
            parts.push(if summary { ConversationPart::Summary { text } } else { ConversationPart::Text { text } });
        }
    }
    match item.get(ENCRYPTED_CONTENT) {
        None | Some(Value::Null) => {}
        Some(Value::String(blob)) => parts.push(encoded(blob)),
        Some(_) => return Err(fail("had non-string encrypted_content".to_string())),
    }
    if parts.is_empty() {
        return Err(fail("contained no content, summary, or encrypted_content".to_string()));
    }
    Ok(parts)
}

/// The strict protocol shape of an `agent_message` item (§6.5).
#[derive(Deserialize)]
struct AgentMessageItem {
    author: String,
    recipient: String,
    content: Vec<AgentMessageContent>,
    #[allow(dead_code)]
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AgentMessageContent {
    InputText { text: String },
    EncryptedContent { encrypted_content: String },
}

fn agent_message(item: &Value, pid: &str) -> Result<Candidate> {
    let message = AgentMessageItem::deserialize(item)
        .map_err(|err| Error::reduce(format!("failed to parse agent_message item in payload {pid}: {err}")))?;
    if message.content.is_empty() {
        return Err(Error::reduce(format!("agent_message item in payload {pid} contained no content")));
    }
    let parts = message
        .content
        .into_iter()
        .map(|content| match content {
            AgentMessageContent::InputText { text } => ConversationPart::Text { text },
            AgentMessageContent::EncryptedContent { encrypted_content } => encoded(&encrypted_content),
        })
        .collect();
    Ok(Candidate {
        role: ConversationRole::Assistant,
        channel: Some(ConversationChannel::Analysis),
        kind: ConversationItemKind::Message,
        agent_message: Some(AgentMessageMetadata { author: message.author, recipient: message.recipient }),
        parts,
        call_id: None,
        images: Vec::new(),
    })
}

/// The hash of an image part's decoded bytes, for a `data:` URL in base64.
fn image_digest(entry: &Value) -> Option<u128> {
    let url = entry.get("image_url")?;
    let url = url.as_str().or_else(|| url.get("url")?.as_str())?;
    let (_, data) = url.strip_prefix("data:")?.split_once(";base64,")?;
    let bytes = decode_base64(data)?;
    // Two fixed-seed 64-bit hashes: the same on every run and machine.
    let hash = |seed: u64| foldhash::quality::FixedState::with_seed(seed).hash_one(&bytes) as u128;
    Some(hash(0x243F_6A88_85A3_08D3) << 64 | hash(0x1319_8A2E_0370_7344))
}

/// Standard or URL-safe base64, padding optional, white space ignored.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        buffer = buffer << 6 | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
        }
    }
    Some(bytes)
}

// ---------------------------------------------------------------------------
// Matching (§7.1)

/// Parts are equal, except that `json` parts compare by summary only.
fn parts_match(stored: &[ConversationPart], candidate: &[ConversationPart]) -> bool {
    stored.len() == candidate.len()
        && stored.iter().zip(candidate).all(|pair| match pair {
            (ConversationPart::Json { summary: a, .. }, ConversationPart::Json { summary: b, .. }) => a == b,
            (a, b) => a == b,
        })
}

fn first_encoded(parts: &[ConversationPart]) -> Option<(&str, &str)> {
    parts.iter().find_map(|part| match part {
        ConversationPart::Encoded { label, value } => Some((label.as_str(), value.as_str())),
        _ => None,
    })
}

/// Reasoning items also match on the identity of their encrypted blob.
fn reasoning_parts_match(stored: &[ConversationPart], candidate: &[ConversationPart]) -> bool {
    parts_match(stored, candidate)
        || matches!((first_encoded(stored), first_encoded(candidate)), (Some(a), Some(b)) if a == b)
}

/// How a stored item matches a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// The parts match too: a reasoning merge would add nothing.
    Parts,
    /// Reasoning items with the same encrypted blob but other parts.
    Blob,
}

/// Whether `item` matches `candidate` (§7.1), and how. Knowing how saves
/// comparing the parts again when the item is merged.
pub(crate) fn match_item(item: &ConversationItem, candidate: &Candidate) -> Option<Match> {
    let same_shape = item.role == candidate.role
        && item.channel == candidate.channel
        && item.kind == candidate.kind
        && item.agent_message == candidate.agent_message
        && item.call_id == candidate.call_id;
    if !same_shape {
        None
    } else if parts_match(&item.body.parts, &candidate.parts) {
        Some(Match::Parts)
    } else if item.kind == ConversationItemKind::Reasoning
        && matches!((first_encoded(&item.body.parts), first_encoded(&candidate.parts)), (Some(a), Some(b)) if a == b)
    {
        Some(Match::Blob)
    } else {
        None
    }
}

pub(crate) fn item_matches(item: &ConversationItem, candidate: &Candidate) -> bool {
    match_item(item, candidate).is_some()
}

/// Reasoning merge (§7.5): readable text or summaries are only added for
/// the kind the stored item lacks.
fn merge_reasoning(stored: &mut Vec<ConversationPart>, candidate: &[ConversationPart]) -> Result<()> {
    if parts_match(stored, candidate) {
        return Ok(());
    }
    if !reasoning_parts_match(stored, candidate) {
        return Err(Error::reduce("reasoning item merge attempted with different encrypted_content identity"));
    }
    let texts = |parts: &[ConversationPart]| -> Vec<ConversationPart> {
        parts.iter().filter(|p| matches!(p, ConversationPart::Text { .. })).cloned().collect()
    };
    let summaries = |parts: &[ConversationPart]| -> Vec<ConversationPart> {
        parts.iter().filter(|p| matches!(p, ConversationPart::Summary { .. })).cloned().collect()
    };
    let (stored_texts, stored_summaries) = (texts(stored), summaries(stored));
    if !stored_texts.is_empty() && !stored_summaries.is_empty() {
        return Ok(());
    }
    let mut merged = if stored_texts.is_empty() { texts(candidate) } else { stored_texts };
    merged.extend(if stored_summaries.is_empty() { summaries(candidate) } else { stored_summaries });
    merged.extend(stored.iter().filter(|p| matches!(p, ConversationPart::Encoded { .. })).cloned());
    *stored = merged;
    Ok(())
}

/// The 0.125 re-sighting of a reasoning item with the same blob: readable
/// parts (texts and summaries) are set once.
fn set_readable_once(stored: &mut Vec<ConversationPart>, candidate: &[ConversationPart]) -> Result<()> {
    let readable = |parts: &[ConversationPart]| -> Vec<ConversationPart> {
        parts.iter().filter(|p| !matches!(p, ConversationPart::Encoded { .. })).cloned().collect()
    };
    let (old, new) = (readable(stored), readable(candidate));
    if new.is_empty() || old == new {
        return Ok(());
    }
    if !old.is_empty() {
        return Err(Error::reduce("reasoning encrypted_content was reused with different readable content"));
    }
    let mut merged = new;
    merged.extend(stored.iter().filter(|p| matches!(p, ConversationPart::Encoded { .. })).cloned());
    *stored = merged;
    Ok(())
}

// ---------------------------------------------------------------------------
// Reconciliation (§7.4, §9.3)

/// Where a reconcile batch runs: thread, turn and the event's wall time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sighting<'a> {
    pub thread: &'a str,
    pub turn: &'a str,
    pub wall_time_unix_ms: i64,
}

impl Reducer {
    /// The reconcile procedure of §7.4 over one batch of candidates.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reconcile(
        &mut self,
        candidates: &[Candidate],
        mode: Mode,
        start: usize,
        baseline: &[ItemRef],
        producers: &[ProducerRef],
        thread: &str,
        turn: &str,
        wall_time_unix_ms: i64,
    ) -> Result<Vec<ItemRef>> {
        let at = Sighting { thread, turn, wall_time_unix_ms };
        let candidates = self.same_images_same_payload(candidates);
        let mut out = Vec::with_capacity(candidates.len());
        self.items.start_batch();
        let mut scan_from = 0;
        for (k, candidate) in candidates.iter().enumerate() {
            let pos = start + k;
            let positional = baseline.get(pos).and_then(|&item| Some((item, self.match_stored(item, candidate)?)));
            // The positional item, if it matches, cannot fail the check.
            self.check_call_id_consistency(thread, candidate, positional.map(|(item, _)| item))?;
            let (item, matched) = match (positional, mode) {
                (Some(chosen), _) => chosen,
                (None, Mode::Full) => match self.scan(thread, baseline, &mut scan_from, candidate) {
                    Some(chosen) => chosen,
                    None => (self.create_item(candidate, producers, at), Match::Parts),
                },
                (None, Mode::Append) if pos < baseline.len() => {
                    return Err(Error::reduce(format!(
                        "model conversation mismatch while reducing turn {turn} for thread {thread} at item index {pos}: existing item {} does not match the current model payload item",
                        self.items.id(baseline[pos])
                    )));
                }
                (None, Mode::Append) => (self.create_item(candidate, producers, at), Match::Parts),
            };
            self.items.choose(item);
            self.sight(item, candidate, matched, producers)?;
            out.push(item);
        }
        self.flush_pending_code_cell_starts()?;
        Ok(out)
    }

    /// Detached reconcile of compaction histories (§9.3): reuse by scan of
    /// `list` only, never by position, never a mismatch error.
    pub(super) fn reconcile_detached(
        &mut self,
        candidates: Vec<Candidate>,
        list: &[ItemRef],
        producers: &[ProducerRef],
        at: Sighting<'_>,
    ) -> Result<Vec<ItemRef>> {
        let candidates = self.same_images_same_payload(&candidates).into_owned();
        let mut out = Vec::with_capacity(candidates.len());
        self.items.start_batch();
        let mut scan_from = 0;
        for candidate in candidates {
            self.check_call_id_consistency(at.thread, &candidate, None)?;
            let (item, matched) = match self.scan(at.thread, list, &mut scan_from, &candidate) {
                Some(chosen) => chosen,
                None => (self.create_item(&candidate, producers, at), Match::Parts),
            };
            self.items.choose(item);
            self.sight(item, &candidate, matched, producers)?;
            out.push(item);
        }
        self.flush_pending_code_cell_starts()?;
        Ok(out)
    }

    /// How the stored `item` matches `candidate`, if it does.
    fn match_stored(&self, item: ItemRef, candidate: &Candidate) -> Option<Match> {
        match_item(self.stored(item), candidate)
    }

    /// The stored conversation item.
    pub(super) fn stored(&self, item: ItemRef) -> &ConversationItem {
        self.items.stored(item)
    }

    /// First item of `list` not yet chosen by this batch that matches
    /// `candidate`. `list` holds items of `thread` (a snapshot or
    /// replacement history). `list[..*from]` are all chosen already: the
    /// batch takes most items of its list in order, so scans skip them.
    fn scan(
        &self,
        thread: &str,
        list: &[ItemRef],
        from: &mut usize,
        candidate: &Candidate,
    ) -> Option<(ItemRef, Match)> {
        while list.get(*from).is_some_and(|&item| self.items.chosen(item)) {
            *from += 1;
        }
        let mut unchosen = list[*from..].iter().filter(|&&item| !self.items.chosen(item));
        let matching = |&item: &ItemRef| Some((item, self.match_stored(item, candidate)?));
        match &candidate.call_id {
            // Only the thread's items with the call id can match; there are
            // few, so this avoids looking up every item of `list`.
            Some(call_id) => {
                let with_call = self.items.in_group(self.items.call_group(thread, call_id)?);
                unchosen.filter(|item| with_call.contains(item)).find_map(matching)
            }
            None => unchosen.find_map(matching),
        }
    }

    /// §7.4 (a): a call id names one piece of content per thread and kind.
    /// `matching` is an item already known to match the candidate.
    fn check_call_id_consistency(&self, thread: &str, candidate: &Candidate, matching: Option<ItemRef>) -> Result<()> {
        let Some(call_id) = &candidate.call_id else {
            return Ok(());
        };
        let group = match matching {
            // A matching item has the candidate's call id: in this thread,
            // its group is the candidate's.
            Some(item) if self.stored(item).thread_id == thread => self.items.get(item).call_group,
            _ => self.items.call_group(thread, call_id),
        };
        let Some(group) = group else {
            return Ok(());
        };
        for &item in self.items.in_group(group) {
            // Mostly the call and its output: other kinds never conflict.
            if Some(item) == matching || self.stored(item).kind != candidate.kind {
                continue;
            }
            if !item_matches(self.stored(item), candidate) {
                return Err(Error::reduce(format!(
                    "model-visible call id {call_id} was reused with different content"
                )));
            }
        }
        Ok(())
    }

    /// The image-mime repair: each image part refers to the first payload
    /// that held the same decoded bytes, so a re-sent image matches the item
    /// it was first seen in. Candidates without image keys (every one when
    /// the repair is off) pass through untouched.
    fn same_images_same_payload<'c>(&mut self, candidates: &'c [Candidate]) -> Cow<'c, [Candidate]> {
        if candidates.iter().all(|candidate| candidate.images.is_empty()) {
            return Cow::Borrowed(candidates);
        }
        let mut repaired = candidates.to_vec();
        for candidate in &mut repaired {
            for key in &candidate.images {
                let Some(ConversationPart::PayloadRef { raw_payload_id, .. }) = candidate.parts.get_mut(key.part)
                else {
                    continue;
                };
                let first = self.image_payloads.entry(key.digest).or_insert_with(|| raw_payload_id.clone()).clone();
                if first != *raw_payload_id {
                    let message = format!(
                        "image part in {raw_payload_id} has the decoded bytes of the image in {first}: taken as that image"
                    );
                    self.note_repair(Repair::ImageMime, raw_payload_id, message);
                    *raw_payload_id = first;
                }
            }
        }
        Cow::Owned(repaired)
    }

    /// A new conversation item with the next ordinal.
    pub(super) fn create_item(
        &mut self,
        candidate: &Candidate,
        producers: &[ProducerRef],
        at: Sighting<'_>,
    ) -> ItemRef {
        self.items.push(ConversationItem {
            item_id: self.items.next_id(),
            thread_id: at.thread.to_string(),
            codex_turn_id: Some(at.turn.to_string()),
            first_seen_at_unix_ms: at.wall_time_unix_ms,
            role: candidate.role,
            channel: candidate.channel,
            kind: candidate.kind,
            agent_message: candidate.agent_message.clone(),
            body: ConversationBody { parts: candidate.parts.clone() },
            call_id: candidate.call_id.clone(),
            produced_by: producers.to_vec(),
        })
    }

    /// §7.4 (c) and (d): update the chosen item, then run the hooks.
    /// Most sightings (a request's items) change nothing in the item: only
    /// a reasoning merge (items with equal parts have nothing to merge) or
    /// new producers do.
    fn sight(&mut self, item: ItemRef, candidate: &Candidate, matched: Match, producers: &[ProducerRef]) -> Result<()> {
        if matched == Match::Blob || !producers.is_empty() {
            let stored = self.items.stored_mut(item);
            if matched == Match::Blob {
                match self.rules.reasoning_resighting {
                    ReasoningResighting::Merge => merge_reasoning(&mut stored.body.parts, &candidate.parts)?,
                    ReasoningResighting::SetOnce => set_readable_once(&mut stored.body.parts, &candidate.parts)?,
                }
            }
            for producer in producers {
                push_unique(&mut stored.produced_by, producer.clone());
            }
        }
        // A matched item has the candidate's kind and call id.
        self.run_item_hooks(item, candidate.kind, candidate.call_id.as_deref())
    }

    /// Hooks of §10 for one reconciled item, in order: tool link, code-cell
    /// output link, agent-edge resolution.
    fn run_item_hooks(&mut self, item: ItemRef, kind: ConversationItemKind, call_id: Option<&str>) -> Result<()> {
        if let Some(call_id) = call_id {
            self.link_item_to_tool(item, call_id, kind);
            if kind == ConversationItemKind::CustomToolCallOutput {
                self.link_output_to_code_cell(item, call_id);
            }
        }
        self.resolve_pending_edge_for_item(item)
    }

    /// Appends a producer to an item unless it is already there.
    pub(super) fn add_producer(&mut self, item_id: &str, producer: ProducerRef) {
        push_unique(&mut self.items.stored_mut(ItemRef::of(item_id)).produced_by, producer);
    }

    /// Items of `thread` with `call_id` whose kind passes `filter`, in
    /// ascending id order.
    pub(super) fn items_with_call_id(
        &self,
        thread: &str,
        call_id: &str,
        filter: impl Fn(ConversationItemKind) -> bool,
    ) -> Vec<String> {
        let Some(group) = self.items.call_group(thread, call_id) else {
            return Vec::new();
        };
        let ids = self
            .items
            .in_group(group)
            .iter()
            .filter(|&&item| filter(self.stored(item).kind))
            .map(|&item| self.items.id(item));
        super::sorted_ids(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::Profile;

    fn normalize(item: &str) -> Result<Candidate> {
        normalize_item(&serde_json::from_str(item).unwrap(), "raw_payload:4", &Profile::crate_tests().rules)
    }

    fn parts(item: &str) -> Vec<ConversationPart> {
        normalize(item).unwrap().parts
    }

    fn text(t: &str) -> ConversationPart {
        ConversationPart::Text { text: t.to_string() }
    }

    fn json_part(summary: &str) -> ConversationPart {
        ConversationPart::Json { summary: summary.to_string(), raw_payload_id: "raw_payload:4".to_string() }
    }

    fn message(item: &str) -> String {
        normalize(item).unwrap_err().message
    }

    #[test]
    fn message_roles_phases_and_content() {
        let c = normalize(r#"{"type":"message","role":"assistant","phase":"final_answer","content":[{"type":"output_text","text":"hi"}]}"#).unwrap();
        assert_eq!(
            (c.role, c.channel, c.kind),
            (ConversationRole::Assistant, Some(ConversationChannel::Final), ConversationItemKind::Message)
        );
        assert_eq!(c.parts, vec![text("hi")]);
        let c = normalize(r#"{"type":"message","role":"assistant","phase":"analysis","content":[{"type":"output_text"},{"type":"refusal","refusal":"no"},{"foo":1}]}"#).unwrap();
        assert_eq!(c.channel, None);
        assert_eq!(c.parts, vec![payload_ref("refusal", "raw_payload:4"), payload_ref("content", "raw_payload:4")]);
        assert_eq!(
            parts(r#"{"type":"message","role":"user","content":[]}"#),
            vec![payload_ref("empty_content", "raw_payload:4")]
        );
        assert_eq!(
            parts(r#"{"type":"message","role":"user","content":"x"}"#),
            vec![payload_ref("content", "raw_payload:4")]
        );
        assert_eq!(
            message(r#"{"type":"message","role":"robot","content":[]}"#),
            "unsupported message role robot in payload raw_payload:4"
        );
        assert_eq!(
            message(r#"{"type":"message","content":[]}"#),
            "message item in payload raw_payload:4 did not contain a string role"
        );
    }

    #[test]
    fn item_types_and_errors() {
        assert_eq!(
            message(r#"{"type":"new_thing"}"#),
            "unsupported model item type new_thing in payload raw_payload:4"
        );
        assert_eq!(message(r#"{"role":"user"}"#), "model item in payload raw_payload:4 did not contain a string type");
        assert_eq!(message("3"), "model item in payload raw_payload:4 did not contain a string type");
        assert_eq!(
            message(r#"{"type":"compaction"}"#),
            "compaction item in payload raw_payload:4 did not contain string encrypted_content"
        );
    }

    #[test]
    fn function_call_arguments_and_outputs() {
        assert_eq!(parts(r#"{"type":"function_call","arguments":"ls -la","call_id":"c"}"#), vec![text("ls -la")]);
        assert_eq!(parts(r#"{"type":"function_call","arguments":"42"}"#), vec![json_part("42")]);
        assert_eq!(parts(r#"{"type":"function_call","arguments":""}"#), vec![text("")]);
        assert_eq!(parts(r#"{"type":"function_call","arguments":null}"#), vec![json_part("null")]);
        assert_eq!(parts(r#"{"type":"function_call"}"#), vec![payload_ref("payload", "raw_payload:4")]);
        assert_eq!(
            parts(
                r#"{"type":"function_call","arguments":"{\"z\": 1.0, \"a\": 1e20, \"m\": -0, \"b\": \"\\u0001é/\"}"}"#
            ),
            vec![json_part("{\"a\":1e+20,\"b\":\"\\u0001é/\",\"m\":0,\"z\":1.0}")]
        );
        assert_eq!(parts(r#"{"type":"function_call_output","output":{"k":"v"}}"#), vec![json_part("{\"k\":\"v\"}")]);
        assert_eq!(parts(r#"{"type":"function_call_output","output":null}"#), vec![json_part("null")]);
        assert_eq!(parts(r#"{"type":"function_call_output"}"#), vec![payload_ref("tool_output", "raw_payload:4")]);
        assert_eq!(
            parts(
                r#"{"type":"function_call_output","output":[{"type":"input_text","text":"o1"},{"type":"input_image","image_url":"x"}]}"#
            ),
            vec![text("o1"), payload_ref("input_image", "raw_payload:4")]
        );
    }

    #[test]
    fn custom_and_whole_item_bodies() {
        assert_eq!(
            parts(r#"{"type":"custom_tool_call","name":"exec","input":"1+1","call_id":"x"}"#),
            vec![ConversationPart::Code { language: "javascript".into(), source: "1+1".into() }]
        );
        assert_eq!(parts(r#"{"type":"custom_tool_call","name":"apply_patch","input":"p"}"#), vec![text("p")]);
        assert_eq!(
            parts(
                r#"{"type":"custom_tool_call","name":"apply_patch","call_id":"x3","zzz":1,"internal_chat_message_metadata_passthrough":{"a":1}}"#
            ),
            vec![json_part(r#"{"call_id":"x3","name":"apply_patch","type":"custom_tool_call","zzz":1}"#)]
        );
        let c = normalize(r#"{"type":"local_shell_call","call_id":null,"action":{}}"#).unwrap();
        assert_eq!((c.kind, c.call_id), (ConversationItemKind::FunctionCall, None));
        assert_eq!(c.parts, vec![json_part(r#"{"action":{},"call_id":null,"type":"local_shell_call"}"#)]);
    }

    #[test]
    fn reasoning_bodies() {
        assert_eq!(
            parts(
                r#"{"type":"reasoning","content":[{"type":"reasoning_text","text":"raw"}],"summary":[{"type":"summary_text","text":"short"}],"encrypted_content":"ENC"}"#
            ),
            vec![text("raw"), ConversationPart::Summary { text: "short".into() }, encoded("ENC")]
        );
        let pid = "reasoning item in payload raw_payload:4";
        assert_eq!(message(r#"{"type":"reasoning","summary":null}"#), format!("{pid} had non-array summary"));
        assert_eq!(message(r#"{"type":"reasoning","content":{}}"#), format!("{pid} had non-array content"));
        assert_eq!(
            message(r#"{"type":"reasoning","content":[{"text":"a"}]}"#),
            format!("{pid} had content entry without string type")
        );
        assert_eq!(
            message(r#"{"type":"reasoning","content":[{"type":"x","text":"a"}]}"#),
            format!("{pid} had unsupported content type x")
        );
        assert_eq!(
            message(r#"{"type":"reasoning","summary":[{"type":"text","text":"a"}]}"#),
            format!("{pid} had unsupported summary type text")
        );
        assert_eq!(
            message(r#"{"type":"reasoning","summary":[{"type":"summary_text"}]}"#),
            format!("{pid} had summary entry without string text")
        );
        assert_eq!(
            message(r#"{"type":"reasoning","encrypted_content":1}"#),
            format!("{pid} had non-string encrypted_content")
        );
        assert_eq!(
            message(r#"{"type":"reasoning","content":null,"summary":[]}"#),
            format!("{pid} contained no content, summary, or encrypted_content")
        );
    }

    #[test]
    fn reasoning_merge_adds_only_missing_readable_kinds() {
        let summary = |t: &str| ConversationPart::Summary { text: t.to_string() };
        let mut stored = vec![text("need count"), encoded("ENC")];
        merge_reasoning(&mut stored, &[summary("counting files"), encoded("ENC")]).unwrap();
        assert_eq!(stored, vec![text("need count"), summary("counting files"), encoded("ENC")]);
        let mut stored = vec![text("first"), encoded("ENC")];
        merge_reasoning(&mut stored, &[text("different"), encoded("ENC")]).unwrap();
        assert_eq!(stored, vec![text("first"), encoded("ENC")]);
        assert!(merge_reasoning(&mut stored, &[encoded("OTHER")]).is_err());
    }

    #[test]
    fn agent_messages_decode_strictly() {
        let c = normalize(r#"{"type":"agent_message","author":"/root","recipient":"/root/a","content":[{"type":"input_text","text":"go"},{"type":"encrypted_content","encrypted_content":"E"}]}"#).unwrap();
        assert_eq!(c.agent_message, Some(AgentMessageMetadata { author: "/root".into(), recipient: "/root/a".into() }));
        assert_eq!(c.parts, vec![text("go"), encoded("E")]);
        assert!(message(r#"{"type":"agent_message","author":"/root","recipient":"/root/a","content":[{"type":"output_text","text":"go"}]}"#)
            .starts_with("failed to parse agent_message item in payload raw_payload:4"));
        assert_eq!(
            message(r#"{"type":"agent_message","author":"/root","recipient":"/root/a","content":[]}"#),
            "agent_message item in payload raw_payload:4 contained no content"
        );
    }

    #[test]
    fn summary_cut_inside_a_character_is_an_error_not_a_panic() {
        let args = serde_json::to_string(&format!("{}é", "x".repeat(238))).unwrap();
        let item = format!(r#"{{"type":"function_call","arguments":{}}}"#, serde_json::to_string(&args).unwrap());
        assert!(message(&item).contains("inside a UTF-8 character"));
    }
}
