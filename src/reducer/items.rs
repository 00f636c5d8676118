//! The conversation items of a replay and their replay state, indexed by
//! ordinal.
//!
//! Every request repeats its thread's conversation, so the reducer sees
//! each item again and again. Looking items up by their string id in the
//! trace (a `BTreeMap`) or in string-keyed sets costs string compares or
//! hashing each time; so during the replay the items live here, one slot
//! per ordinal, with what the reducer remembers about each, and the
//! reducer's own lists (snapshots, baselines) name them by `ItemRef`. They
//! move into the trace when the replay ends (`Reducer::into_trace`).

use super::tool::ToolRef;
use super::HashMap;
use crate::model::{ConversationItem, SharedItemId};

/// A conversation item of this replay: the `n` of its id
/// `conversation_item:<n>`, minus one. Every item id in a replay is made by
/// `create_item`, so every id has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ItemRef(u32);

const ITEM_ID_PREFIX: &str = "conversation_item:";

impl ItemRef {
    /// The item named by an id the reducer made.
    pub fn of(id: &str) -> ItemRef {
        id.strip_prefix(ITEM_ID_PREFIX)
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(|n| n.checked_sub(1))
            .map(ItemRef)
            .expect("conversation item ids are made by the reducer")
    }

    fn index(self) -> usize {
        self.0 as usize
    }
}

/// The items of one thread with one call id: the call-id check of 02
/// §7.4 (a) looks at all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallGroup(u32);

/// One item and what the reducer keeps about it.
pub(crate) struct ItemState {
    pub item: ConversationItem,
    /// `item.item_id`, for the request lists that name the item.
    shared_id: SharedItemId,
    /// The item's call group, when it has a call id.
    pub call_group: Option<CallGroup>,
    /// Already in its thread's `conversation_item_ids` (02 §7.6).
    pub listed: bool,
    /// Already the `conversation_item` target of an interaction edge.
    pub edge_target: bool,
    /// The tool whose call or output item list holds the item (and, for
    /// an output, that is among its producers). The tool of a call id never
    /// changes once it exists and those lists only grow, so this stays.
    pub tool: Option<ToolRef>,
    /// The item is in its code cell's outputs and has the cell among its
    /// producers; stays true for the same reasons.
    pub code_cell_linked: bool,
    /// Whether the item is a delivery item (03 §6.5), once asked.
    pub delivery: Delivery,
    /// Inference calls whose current `response_item_ids` hold the item.
    pub responding_inferences: Vec<String>,
    /// The reconcile batch that last chose the item (see `Items::batch`).
    chosen_in_batch: u64,
}

/// A cached answer to "is this item a delivery item, and of what?". It
/// only depends on the item's role, kind, agent metadata and parts (which
/// change only by a reasoning merge, and reasoning items are never
/// deliveries) and on its thread's agent path, which never changes.
pub(crate) enum Delivery {
    Unknown,
    No,
    /// (author, content).
    Yes(Box<(String, String)>),
}

/// The items of a replay, by ordinal.
#[derive(Default)]
pub(crate) struct Items {
    states: Vec<ItemState>,
    /// Number of the current reconcile batch, for `chosen_in_batch`.
    batch: u64,
    /// The items of each call group.
    call_groups: Vec<Vec<ItemRef>>,
    /// Thread → call id → call group. Nested so that lookups by `&str`
    /// need no allocation.
    groups_by_call: HashMap<String, HashMap<String, CallGroup>>,
    /// Items changed since `take_changed` (only while a live follower asks).
    changed: Option<Vec<ItemRef>>,
}

impl Items {
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Starts noting which stored items change (a live follower's updates).
    pub fn note_changes(&mut self) {
        self.changed.get_or_insert_with(Vec::new);
    }

    /// The items changed since the last call, each once.
    pub fn take_changed(&mut self) -> Vec<ItemRef> {
        let mut changed = self.changed.as_mut().map(std::mem::take).unwrap_or_default();
        changed.sort_unstable_by_key(|item| item.0);
        changed.dedup();
        changed
    }

    /// A copy of the items, for a snapshot of the trace so far.
    pub fn conversation_items_cloned(&self) -> impl Iterator<Item = (String, ConversationItem)> + '_ {
        self.states.iter().map(|state| (state.item.item_id.clone(), state.item.clone()))
    }

    /// The id the next created item gets.
    pub fn next_id(&self) -> String {
        format!("{ITEM_ID_PREFIX}{}", self.states.len() + 1)
    }

    /// Adds the item, whose id is `next_id()`.
    pub fn push(&mut self, item: ConversationItem) -> ItemRef {
        debug_assert_eq!(item.item_id, self.next_id());
        let item_ref = ItemRef(u32::try_from(self.states.len()).expect("fewer than 2^32 conversation items"));
        let call_group = item.call_id.as_deref().map(|call_id| {
            let group = self.group_for(&item.thread_id, call_id);
            self.call_groups[group.0 as usize].push(item_ref);
            group
        });
        self.states.push(ItemState {
            shared_id: item.item_id.as_str().into(),
            item,
            call_group,
            listed: false,
            edge_target: false,
            tool: None,
            code_cell_linked: false,
            delivery: Delivery::Unknown,
            responding_inferences: Vec::new(),
            chosen_in_batch: 0,
        });
        item_ref
    }

    /// The call group of `thread` and `call_id`, made if there is none.
    fn group_for(&mut self, thread: &str, call_id: &str) -> CallGroup {
        if let Some(group) = self.call_group(thread, call_id) {
            return group;
        }
        let group = CallGroup(u32::try_from(self.call_groups.len()).expect("fewer than 2^32 call groups"));
        self.call_groups.push(Vec::new());
        self.groups_by_call.entry(thread.to_string()).or_default().insert(call_id.to_string(), group);
        group
    }

    /// The call group of `thread` and `call_id`, if any item has them.
    pub fn call_group(&self, thread: &str, call_id: &str) -> Option<CallGroup> {
        self.groups_by_call.get(thread)?.get(call_id).copied()
    }

    /// The items of a call group, oldest first.
    pub fn in_group(&self, group: CallGroup) -> &[ItemRef] {
        &self.call_groups[group.0 as usize]
    }

    pub fn get(&self, item: ItemRef) -> &ItemState {
        &self.states[item.index()]
    }

    pub fn get_mut(&mut self, item: ItemRef) -> &mut ItemState {
        &mut self.states[item.index()]
    }

    /// The stored item.
    pub fn stored(&self, item: ItemRef) -> &ConversationItem {
        &self.get(item).item
    }

    pub fn stored_mut(&mut self, item: ItemRef) -> &mut ConversationItem {
        if let Some(changed) = &mut self.changed {
            changed.push(item);
        }
        &mut self.get_mut(item).item
    }

    pub fn id(&self, item: ItemRef) -> &String {
        &self.stored(item).item_id
    }

    /// The ids of `items`, for the trace.
    pub fn ids(&self, items: &[ItemRef]) -> Vec<String> {
        items.iter().map(|&item| self.id(item).clone()).collect()
    }

    /// `ids`, sharing each id with every other list that names the item.
    pub fn shared_ids(&self, items: &[ItemRef]) -> Vec<SharedItemId> {
        items.iter().map(|&item| self.get(item).shared_id.clone()).collect()
    }

    /// Starts a reconcile batch: no item is chosen in it yet.
    pub fn start_batch(&mut self) {
        self.batch += 1;
    }

    /// Records that the current batch chose `item`.
    pub fn choose(&mut self, item: ItemRef) {
        let batch = self.batch;
        self.get_mut(item).chosen_in_batch = batch;
    }

    /// Whether the current batch already chose `item`: a scan may not
    /// reuse it (02 §7.4).
    pub fn chosen(&self, item: ItemRef) -> bool {
        self.get(item).chosen_in_batch == self.batch
    }

    /// The items, for the trace's `conversation_items`.
    pub fn into_conversation_items(self) -> impl Iterator<Item = (String, ConversationItem)> {
        self.states.into_iter().map(|state| (state.item.item_id.clone(), state.item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConversationBody, ConversationItemKind, ConversationRole};

    fn item(items: &Items, kind: ConversationItemKind) -> ConversationItem {
        ConversationItem {
            item_id: items.next_id(),
            thread_id: "th".to_string(),
            codex_turn_id: None,
            first_seen_at_unix_ms: 0,
            role: ConversationRole::User,
            channel: None,
            kind,
            agent_message: None,
            body: ConversationBody { parts: Vec::new() },
            call_id: None,
            produced_by: Vec::new(),
        }
    }

    #[test]
    fn refs_follow_ordinals() {
        let mut items = Items::default();
        assert_eq!(items.next_id(), "conversation_item:1");
        let first = items.push(item(&items, ConversationItemKind::Message));
        let second = items.push(item(&items, ConversationItemKind::FunctionCall));
        assert_eq!((first, second), (ItemRef::of("conversation_item:1"), ItemRef::of("conversation_item:2")));
        assert_eq!(items.id(second), "conversation_item:2");
        assert_eq!(items.stored(second).kind, ConversationItemKind::FunctionCall);
        let mut call = item(&items, ConversationItemKind::FunctionCall);
        call.call_id = Some("c1".to_string());
        let third = items.push(call);
        let group = items.call_group("th", "c1").unwrap();
        assert_eq!((items.in_group(group), items.get(third).call_group), (&[third][..], Some(group)));
        assert_eq!(items.call_group("other", "c1"), None);
        let ids: Vec<String> = items.into_conversation_items().map(|(id, _)| id).collect();
        assert_eq!(ids, ["conversation_item:1", "conversation_item:2", "conversation_item:3"]);
    }

    #[test]
    fn a_batch_forgets_the_choices_of_the_last() {
        let mut items = Items::default();
        let message = items.push(item(&items, ConversationItemKind::Message));
        items.start_batch();
        assert!(!items.chosen(message));
        items.choose(message);
        assert!(items.chosen(message));
        items.start_batch();
        assert!(!items.chosen(message));
    }
}
