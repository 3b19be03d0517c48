//! The Wing & Gong search with Lowe's cache, over one part of a history.

use core::fmt::Write as _;
use core::hash::{BuildHasherDefault, Hasher};
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::{CheckStats, Model, Operation};

/// The end of a linked list (and "no entry").
const NIL: usize = usize::MAX;
/// A list's head sentinel.
const HEAD: usize = 0;
/// How many candidates and placed operations an explanation lists.
const EXPLAIN_MAX: usize = 8;

pub(super) enum Outcome {
    Linearizable,
    Violation(String),
    OutOfBudget,
}

/// A fast, deterministic hasher for the cache keys (bitset words and small states). Not
/// DoS-resistant, which does not matter for a test oracle.
#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        // Final avalanche (the murmur3 finalizer) so HashMap's bucket bits are well mixed.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Visited configurations: (completed operations linearized, model state) -> the sets of pending
/// operations used on the ways there that were explored. A set that is a superset of one of these
/// leaves fewer options for the same future, so it need not be explored (see `visit`).
type Cache<S> = HashMap<(Box<[u64]>, S), Vec<Box<[u64]>>, BuildHasherDefault<FoldHasher>>;

/// A doubly linked list of call and return entries sorted by time (calls before returns at equal
/// times), with `HEAD` as sentinel. Unlinking an operation and relinking it in reverse order
/// restores the list exactly (dancing links).
struct List {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each entry: the local operation index.
    op: Vec<usize>,
    /// For each entry: whether it is a call.
    is_call: Vec<bool>,
    /// For each entry: its time.
    time: Vec<u64>,
    /// For each local operation: its call entry, `NIL` when not in this list.
    call_entry: Vec<usize>,
    /// For each local operation: its return entry, `NIL` when none.
    ret_entry: Vec<usize>,
}

impl List {
    /// `members`: (local op, call, return) for the operations in this list; `locals`: how many
    /// local operations there are in all.
    fn new(locals: usize, members: impl Iterator<Item = (usize, u64, Option<u64>)>) -> List {
        // (time, 0 = call / 1 = return, local op): a total order, so the list is deterministic.
        let mut events: Vec<(u64, u8, usize)> = Vec::new();
        for (local, call, ret) in members {
            events.push((call, 0, local));
            if let Some(ret) = ret {
                events.push((ret, 1, local));
            }
        }
        events.sort_unstable();
        let len = events.len() + 1;
        let mut list = List {
            next: (1..=len).map(|i| if i == len { NIL } else { i }).collect(),
            prev: (0..len).map(|i| if i == 0 { NIL } else { i - 1 }).collect(),
            op: vec![NIL; len],
            is_call: vec![false; len],
            time: vec![0; len],
            call_entry: vec![NIL; locals],
            ret_entry: vec![NIL; locals],
        };
        for (i, &(time, kind, local)) in events.iter().enumerate() {
            let entry = i + 1;
            list.op[entry] = local;
            list.is_call[entry] = kind == 0;
            list.time[entry] = time;
            if kind == 0 {
                list.call_entry[local] = entry;
            } else {
                list.ret_entry[local] = entry;
            }
        }
        list
    }

    fn unlink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = entry;
        if next != NIL {
            self.prev[next] = entry;
        }
    }

    fn lift(&mut self, local: usize) {
        self.unlink(self.call_entry[local]);
        if self.ret_entry[local] != NIL {
            self.unlink(self.ret_entry[local]);
        }
    }

    fn unlift(&mut self, local: usize) {
        if self.ret_entry[local] != NIL {
            self.relink(self.ret_entry[local]);
        }
        self.relink(self.call_entry[local]);
    }

    /// The first return entry (`NIL` if none): every call before it is a candidate.
    fn first_return(&self) -> usize {
        let mut entry = self.next[HEAD];
        while entry != NIL && self.is_call[entry] {
            entry = self.next[entry];
        }
        entry
    }
}

struct Bitset(Vec<u64>);

impl Bitset {
    fn new(bits: usize) -> Bitset {
        Bitset(vec![0; bits.div_ceil(64)])
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

fn is_subset(small: &[u64], big: &[u64]) -> bool {
    small.iter().zip(big).all(|(s, b)| s & !b == 0)
}

/// Records the configuration (`completed`, `state`, `pending`) as visited. Returns `false` when
/// it need not be explored: some visited configuration had the same completed operations and
/// state and used a subset of its pending operations. That one has every option this one has
/// (pending operations never constrain others, so which operations may go next depends only on
/// the completed ones), and it has been or is being explored in full.
fn visit<S: Clone + Eq + core::hash::Hash>(
    cache: &mut Cache<S>,
    entries: &mut usize,
    completed: &Bitset,
    state: &S,
    pending: &Bitset,
) -> bool {
    let key = (completed.0.clone().into_boxed_slice(), state.clone());
    match cache.entry(key) {
        Entry::Vacant(slot) => {
            slot.insert(vec![pending.0.clone().into_boxed_slice()]);
            *entries += 1;
            true
        }
        Entry::Occupied(mut slot) => {
            let used = slot.get_mut();
            if used.iter().any(|u| is_subset(u, &pending.0)) {
                return false;
            }
            // Supersets of the new set are now redundant: whatever they would prune, it prunes.
            let before = used.len();
            used.retain(|u| !is_subset(&pending.0, u));
            *entries -= before - used.len();
            used.push(pending.0.clone().into_boxed_slice());
            *entries += 1;
            true
        }
    }
}

/// Where the scan for the next candidate is.
#[derive(Clone, Copy)]
enum Cursor {
    /// At this entry of the completed operations' list.
    Completed(usize),
    /// Below this position of the pending operations (sorted by call): the next one to consider
    /// is at `position - 1`. The scan goes downwards, from the last one called no later than the
    /// first remaining return: the one a read needs was usually called shortly before it.
    Pending(usize),
}

/// One placed operation.
struct Frame<S> {
    local: usize,
    /// The model state before it.
    before: S,
    /// For a pending operation, the stack index where its run of consecutive pending operations
    /// starts; `NIL` for a completed one.
    run_start: usize,
}

/// The deepest dead end met so far, for the explanation.
struct DeadEnd {
    depth: usize,
    text: String,
}

/// Searches one part (`part`: indices into `history`) for a linearization. Adds its steps to
/// `stats.steps` and stops with [`Outcome::OutOfBudget`] once they reach `budget`.
pub(super) fn search<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    part: &[usize],
    budget: u64,
    stats: &mut CheckStats,
) -> Outcome {
    // Pending operations called after every completed return can always go last, and those the
    // model calls useless are never needed: drop both.
    let last_ret = part.iter().filter_map(|&i| history[i].ret).max();
    let Some(last_ret) = last_ret else {
        return Outcome::Linearizable; // nothing completed: leave every pending op out
    };
    let mut useless = model.useless_pending(history, part);
    useless.sort_unstable();
    let ops: Vec<usize> = part
        .iter()
        .copied()
        .filter(|&i| {
            history[i].ret.is_some()
                || (history[i].call <= last_ret && useless.binary_search(&i).is_err())
        })
        .collect();
    let is_pending = |local: usize| history[ops[local]].ret.is_none();
    // Completed operations live in the Wing & Gong list; pending ones, which have no return
    // entry, in a separate array sorted by call. Completed candidates are tried first: the
    // likely linearization rarely needs a pending one.
    let mut main = List::new(
        ops.len(),
        (0..ops.len())
            .filter(|&l| !is_pending(l))
            .map(|l| (l, history[ops[l]].call, history[ops[l]].ret)),
    );
    let mut pend: Vec<usize> = (0..ops.len()).filter(|&l| is_pending(l)).collect();
    pend.sort_by_key(|&l| (history[ops[l]].call, l));
    let pend_call: Vec<u64> = pend.iter().map(|&l| history[ops[l]].call).collect();
    // Each operation's bit in its kind's bitset; for a pending one, its position in `pend`.
    let mut slot = vec![0; ops.len()];
    let mut completed_count = 0;
    for (local, slot) in slot.iter_mut().enumerate() {
        if !is_pending(local) {
            *slot = completed_count;
            completed_count += 1;
        }
    }
    for (position, &local) in pend.iter().enumerate() {
        slot[local] = position;
    }
    let twin = twins(history, &ops, &pend);

    let mut remaining = completed_count;
    let mut state = model.init();
    let mut done_completed = Bitset::new(completed_count);
    let mut done_pending = Bitset::new(pend.len());
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut cache: Cache<M::State> = Cache::default();
    let mut entries = 0;
    let mut dead_end: Option<DeadEnd> = None;
    let mut cursor = Cursor::Completed(main.next[HEAD]);
    // The first position in `pend` called after the first remaining return.
    let pending_end = |main: &List| {
        let first = main.first_return();
        // `remaining > 0`, so a return is left; `NIL` cannot happen, but is harmless.
        let limit = if first == NIL {
            u64::MAX
        } else {
            main.time[first]
        };
        pend_call.partition_point(|&call| call <= limit)
    };

    // The pending operations open at the first remaining return, unplaced, latest call first.
    let pend_open = |main: &List, done: &Bitset| -> Vec<usize> {
        (0..pending_end(main))
            .rev()
            .filter(|&p| !done.get(p))
            .map(|p| pend[p])
            .collect()
    };

    let outcome = loop {
        if remaining == 0 {
            break Outcome::Linearizable;
        }
        // Find the next candidate: a completed call before the first return, then a pending
        // call no later than it. `None`: none left here, backtrack.
        let candidate = loop {
            match cursor {
                Cursor::Completed(entry) if entry != NIL && main.is_call[entry] => {
                    break Some(main.op[entry]);
                }
                Cursor::Completed(_) => cursor = Cursor::Pending(pending_end(&main)),
                Cursor::Pending(0) => break None,
                Cursor::Pending(position) => {
                    let p = position - 1;
                    cursor = Cursor::Pending(p);
                    // Of pending operations with equal inputs, only use them in call order: a
                    // linearization using a later one can use the earlier one at that point.
                    let eligible = twin[p] == NIL || done_pending.get(twin[p]);
                    if !done_pending.get(p) && eligible {
                        break Some(pend[p]);
                    }
                }
            }
        };
        if stats.steps >= budget {
            break Outcome::OutOfBudget;
        }
        stats.steps += 1;
        let Some(local) = candidate else {
            // Nothing can go next, yet the first remaining return's operation is not placed.
            if dead_end.as_ref().is_none_or(|d| stack.len() > d.depth) {
                dead_end = Some(DeadEnd {
                    depth: stack.len(),
                    text: explain(
                        model,
                        history,
                        &ops,
                        &main,
                        &pend_open(&main, &done_pending),
                        &state,
                        &stack,
                    ),
                });
            }
            let Some(frame) = stack.pop() else {
                let text = dead_end.map_or_else(String::new, |d| d.text);
                break Outcome::Violation(format!(
                    "{} ops ({} pending) have no linearization; {text}",
                    ops.len(),
                    pend.len()
                ));
            };
            let local = frame.local;
            state = frame.before;
            if is_pending(local) {
                done_pending.clear(slot[local]);
                cursor = Cursor::Pending(slot[local]);
            } else {
                done_completed.clear(slot[local]);
                main.unlift(local);
                remaining += 1;
                cursor = Cursor::Completed(main.next[main.call_entry[local]]);
            }
            continue;
        };
        let op = &history[ops[local]];
        let pending = op.ret.is_none();
        let (next_state, output) = model.step(&state, &op.input);
        let fits = match &op.output {
            Some(expected) => output == *expected,
            // Pending: any output. But placing it where it changes nothing is pointless, and so
            // is placing it where it makes the pending ones placed just before it (since the
            // last completed one) irrelevant: the same state is reached by placing only it
            // there, which the search tries from the start of the run.
            None => {
                next_state != state
                    && stack.last().is_none_or(|top| {
                        top.run_start == NIL
                            || model.step(&stack[top.run_start].before, &op.input).0 != next_state
                    })
            }
        };
        if fits {
            let done = if pending {
                &mut done_pending
            } else {
                &mut done_completed
            };
            done.set(slot[local]);
            let new = visit(
                &mut cache,
                &mut entries,
                &done_completed,
                &next_state,
                &done_pending,
            );
            if new {
                let run_start = match stack.last() {
                    _ if !pending => NIL,
                    Some(top) if top.run_start != NIL => top.run_start,
                    _ => stack.len(),
                };
                let before = core::mem::replace(&mut state, next_state);
                stack.push(Frame {
                    local,
                    before,
                    run_start,
                });
                if !pending {
                    main.lift(local);
                    remaining -= 1;
                }
                cursor = Cursor::Completed(main.next[HEAD]);
                continue;
            }
            let done = if pending {
                &mut done_pending
            } else {
                &mut done_completed
            };
            done.clear(slot[local]);
        }
        if let Cursor::Completed(entry) = cursor {
            cursor = Cursor::Completed(main.next[entry]);
        }
        // (A pending cursor already points past the candidate.)
    };
    stats.max_cache_entries = stats.max_cache_entries.max(entries);
    outcome
}

/// For each pending position, the previous pending position with an equal input, or `NIL`.
fn twins<I: PartialEq, O>(
    history: &[Operation<I, O>],
    ops: &[usize],
    pend: &[usize],
) -> Vec<usize> {
    let mut twin = vec![NIL; pend.len()];
    // (an input, the last pending position seen with it)
    let mut groups: Vec<(&I, usize)> = Vec::new();
    for (position, &local) in pend.iter().enumerate() {
        let input = &history[ops[local]].input;
        match groups.iter_mut().find(|(i, _)| *i == input) {
            Some((_, last)) => {
                twin[position] = *last;
                *last = position;
            }
            None => groups.push((input, position)),
        }
    }
    twin
}

fn describe<I: core::fmt::Debug, O: core::fmt::Debug>(
    out: &mut String,
    index: usize,
    op: &Operation<I, O>,
) {
    let _ = write!(out, "#{index} (client {}, {:?} ", op.client, op.input);
    match (&op.output, op.ret) {
        (Some(output), Some(ret)) => {
            let _ = write!(out, "-> {output:?}, [{}, {ret}])", op.call);
        }
        _ => {
            let _ = write!(out, "-> pending, [{}, ..))", op.call);
        }
    }
}

/// Explains a dead end: the operation whose return comes first yet could not be placed, the
/// candidates open there with what the model would answer, and the last operations placed.
fn explain<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    ops: &[usize],
    main: &List,
    pending_open: &[usize],
    state: &M::State,
    stack: &[Frame<M::State>],
) -> String {
    let mut out = String::new();
    let first = main.first_return();
    if first == NIL {
        return out;
    }
    let blocked = ops[main.op[first]];
    let _ = write!(
        out,
        "the deepest attempt placed {} ops, then could not place ",
        stack.len()
    );
    describe(&mut out, blocked, &history[blocked]);
    let _ = write!(
        out,
        " before its return, from model state {state:?}. Open candidates: "
    );
    let mut open = Vec::new();
    let mut entry = main.next[HEAD];
    while entry != first {
        open.push(main.op[entry]);
        entry = main.next[entry];
    }
    open.extend_from_slice(pending_open);
    for (n, &local) in open.iter().take(EXPLAIN_MAX).enumerate() {
        let index = ops[local];
        let op = &history[index];
        if n > 0 {
            out.push_str("; ");
        }
        describe(&mut out, index, op);
        let (_, would) = model.step(state, &op.input);
        let _ = write!(out, " would return {would:?}");
    }
    if open.len() > EXPLAIN_MAX {
        let _ = write!(out, "; and {} more", open.len() - EXPLAIN_MAX);
    }
    let _ = write!(out, ". Last placed: ");
    let start = stack.len().saturating_sub(EXPLAIN_MAX);
    if stack.is_empty() {
        out.push_str("none");
    }
    for (n, frame) in stack[start..].iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        let index = ops[frame.local];
        describe(&mut out, index, &history[index]);
    }
    out
}
