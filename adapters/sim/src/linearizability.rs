//! A linearizability checker for client histories.
//!
//! ## What is checked
//! A history is the list of operations clients issued against a shared object (here, typically a
//! replicated key-value store running on a simulated Raft cluster): for each operation, its input,
//! the virtual time the client invoked it (`call`), and, if a response arrived, the time it did
//! (`ret`) and what it said (`output`). The history is **linearizable** (Herlihy & Wing, 1990)
//! when every operation can be given a single instant, its *linearization point*, inside its
//! interval `[call, ret]`, such that replaying the operations one at a time in the order of those
//! points through a sequential specification (a [`Model`]) gives exactly the outputs the clients
//! saw. Informally: the replicated store behaves as one copy that executes operations atomically,
//! and an operation that completed before another began is ordered before it.
//!
//! ## Algorithm
//! - **Wing & Gong** (1993), "Testing and verifying concurrent objects": depth-first search for a
//!   linearization. The history becomes a doubly linked list of call and return entries sorted by
//!   time. Scanning from the head, any call met before the first return may be linearized next
//!   (its operation is concurrent with everything still open): it is applied to the model, both of
//!   its entries are unlinked, and the scan restarts from the head. Reaching a return entry means
//!   that operation should already have been linearized, so the search backtracks: it relinks the
//!   last linearized operation and tries the next candidate after it.
//! - **Lowe** (2017), "Testing for linearizability" (the same memoization as Knossos' and
//!   Porcupine's): a cache of visited configurations, each the set of linearized operations (a
//!   bitset) plus the model state. Two search paths that linearized the same operations and reached
//!   the same state have the same future, so a configuration is expanded at most once.
//! - **Horn & Kroening** (2015), "Faster linearizability checking via P-compositionality":
//!   [`Model::partition`] splits a history into sub-histories that are independent (e.g. one per
//!   key of a key-value store); the history is linearizable iff every part is, and each part is
//!   searched on its own, which turns one exponential search into many small ones.
//!
//! ## Pending operations (departures from the papers)
//! An operation with `ret == None` got no response (the client timed out, gave up or crashed): it
//! may have taken effect at any instant after its call, or never. It has no return entry, so it
//! never blocks the search: the search may linearize it anywhere after its call, with any output,
//! and succeeds as soon as every *completed* operation is linearized. Since each one stays a
//! candidate forever, pending operations are what makes histories expensive; these sound
//! reductions keep them cheap:
//! - Completed candidates are tried before pending ones, and pending ones latest call first (the
//!   one a read needs was usually called shortly before it).
//! - One called after every completed return is dropped up front (it can always go last), as are
//!   those [`Model::useless_pending`] names (for [`KvModel`]: reads, and writes of values no one
//!   observed).
//! - One is not placed where it would not change the model state (leaving it out is equivalent),
//!   nor where, placed right after other pending ones, it reaches the state it would reach
//!   without them (those are then useless; the search tries it alone from the run's start).
//! - Of pending operations with equal inputs, only the earliest-called unused one is a candidate.
//! - The cache stores, per (completed operations placed, state), the sets of pending operations
//!   used; a configuration using a superset of one already seen is skipped (it has fewer options
//!   for the same future), so the cache is a subsumption check rather than plain equality.
//!
//! ## Time
//! Intervals are closed: an operation that returned at `t` precedes one called at `t' > t`, but is
//! concurrent with one called at exactly `t` (the lenient reading, so equal timestamps never cause
//! a false alarm). `ret < call` is invalid input and [`check`] rejects it with a [`HistoryError`],
//! as it does an operation whose output does not match whether it returned, or a partition that
//! does not cover every operation exactly once. [`check`] never panics on any history (a panic in
//! the model's own code is the model's).
//!
//! ## Cost and budget
//! In the worst case (arbitrary concurrency) the search is exponential: linearizability checking
//! is NP-complete (Gibbons & Korach, 1997). The cache bounds it by the number of distinct
//! configurations; for a part of `n` operations where at most `c` are open at once, the reachable
//! linearized sets are roughly a prefix plus a subset of the `c` open operations, so about
//! `n · 2^c · |states|` configurations, each expanded by a scan over the `c` open calls. With a
//! few clients per key this is close to linear in `n`. A *step* is one attempt to linearize a call
//! or one backtrack; `budget` caps the steps over all parts (checked in the order
//! [`Model::partition`] returns them), and when it runs out [`check`] answers
//! [`Verdict::Unknown`] rather than searching on. The cache holds at most one entry per step
//! (`n/8` bytes of bitset plus a state), so the budget also caps memory. Proving a violation
//! means exhausting the reachable configurations before it, so it costs more than accepting a
//! linearizable history: on one hot key with ~10 concurrent clients, few distinct values and
//! thousands of operations, or with hundreds of pending operations whose values were observed,
//! expect [`Verdict::Unknown`] with the default budgets. Unique written values and many keys keep
//! it cheap.
//!
//! ## Ready models
//! [`KvModel`] is a key-value store with get, put and compare-and-set, partitioned by key.

use core::fmt;
use core::fmt::Debug;
use core::hash::Hash;

mod kv;
mod search;
#[cfg(test)]
mod tests;

pub use kv::{KvInput, KvModel, KvOutput};

/// A sequential specification: what the object does when operations run one at a time.
pub trait Model {
    /// The object's state. Small states make the search's cache cheap.
    type State: Clone + Eq + Hash + Debug;
    /// What a client asks. Equality lets the search treat pending operations with equal inputs
    /// as interchangeable.
    type Input: Clone + Debug + PartialEq;
    /// What the object answers.
    type Output: Clone + Debug + PartialEq;

    /// The initial state.
    fn init(&self) -> Self::State;

    /// Applies `input` to `state`: returns the new state and the output the operation must have
    /// returned.
    fn step(&self, state: &Self::State, input: &Self::Input) -> (Self::State, Self::Output);

    /// Splits a history into independent sub-histories (P-compositionality), as lists of indices
    /// into `history`: every index must appear in exactly one part. Each part is checked on its
    /// own, from [`Model::init`]. The default keeps the history whole.
    fn partition(&self, history: &[Operation<Self::Input, Self::Output>]) -> Vec<Vec<usize>> {
        vec![(0..history.len()).collect()]
    }

    /// An optional reduction: pending operations of `part` (one part from [`Model::partition`])
    /// that no linearization needs, as indices into `history`. Leaving them out must keep every
    /// linearizable part linearizable; for example a pending write whose value no completed
    /// operation observes. Each pending operation kept costs search time, since it may take
    /// effect anywhere after its call. Indices of completed operations are ignored. The default
    /// leaves nothing out.
    fn useless_pending(
        &self,
        history: &[Operation<Self::Input, Self::Output>],
        part: &[usize],
    ) -> Vec<usize> {
        let _ = (history, part);
        Vec::new()
    }
}

/// One operation of a client history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// Which client issued it (for explanations only: the checker does not order a client's own
    /// operations beyond their intervals).
    pub client: u64,
    /// What the client asked.
    pub input: I,
    /// Virtual time (ns) the client invoked it.
    pub call: u64,
    /// Virtual time (ns) the response arrived; `None` when none did (timed out, client gave up or
    /// crashed): the operation may or may not have taken effect, at any time after `call`.
    pub ret: Option<u64>,
    /// The response; `None` exactly when `ret` is `None`.
    pub output: Option<O>,
}

impl<I, O> Operation<I, O> {
    /// A completed operation.
    pub fn completed(client: u64, input: I, call: u64, ret: u64, output: O) -> Self {
        Operation {
            client,
            input,
            call,
            ret: Some(ret),
            output: Some(output),
        }
    }

    /// An operation that got no response.
    pub fn pending(client: u64, input: I, call: u64) -> Self {
        Operation {
            client,
            input,
            call,
            ret: None,
            output: None,
        }
    }
}

/// The answer of [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations, within their intervals, explains every output.
    Linearizable,
    /// No order does.
    NotLinearizable {
        /// Index of the failing part in [`Model::partition`]'s list.
        partition: usize,
        /// The operations involved: the one that could not be placed, the candidates that were
        /// open at that point with what the model would have answered, and the last ones placed.
        detail: String,
    },
    /// The search budget ran out before an answer.
    Unknown {
        /// Where and after how many steps.
        reason: String,
    },
}

impl Verdict {
    /// Whether the verdict is [`Verdict::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

/// Counters from one [`check_with_stats`] run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Search steps taken over all parts.
    pub steps: u64,
    /// Number of parts the model split the history into.
    pub partitions: usize,
    /// Parts fully searched (all of them unless the search stopped early).
    pub partitions_checked: usize,
    /// Largest cache of visited configurations in any one part.
    pub max_cache_entries: usize,
}

/// A history [`check`] refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryError {
    /// `ret < call`.
    ReturnBeforeCall {
        /// Index of the operation in the history.
        index: usize,
        /// Its call time.
        call: u64,
        /// Its return time.
        ret: u64,
    },
    /// `ret` and `output` disagree on whether the operation completed.
    OutputMismatch {
        /// Index of the operation in the history.
        index: usize,
    },
    /// [`Model::partition`] named an index outside the history.
    PartitionOutOfRange {
        /// The index.
        index: usize,
    },
    /// [`Model::partition`] put an operation in two parts, or twice in one.
    PartitionDuplicate {
        /// Index of the operation in the history.
        index: usize,
    },
    /// [`Model::partition`] left an operation out.
    PartitionMissing {
        /// Index of the operation in the history.
        index: usize,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::ReturnBeforeCall { index, call, ret } => {
                write!(
                    f,
                    "operation #{index} returned at {ret} before its call at {call}"
                )
            }
            HistoryError::OutputMismatch { index } => write!(
                f,
                "operation #{index} must have an output exactly when it has a return time"
            ),
            HistoryError::PartitionOutOfRange { index } => {
                write!(
                    f,
                    "partition names operation #{index}, past the end of the history"
                )
            }
            HistoryError::PartitionDuplicate { index } => {
                write!(f, "partition names operation #{index} more than once")
            }
            HistoryError::PartitionMissing { index } => {
                write!(f, "partition leaves operation #{index} out")
            }
        }
    }
}

impl std::error::Error for HistoryError {}

/// Checks whether `history` is linearizable with respect to `model`, taking at most `budget`
/// search steps over all parts (see the module docs for what a step costs).
pub fn check<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    budget: u64,
) -> Result<Verdict, HistoryError> {
    check_with_stats(model, history, budget).map(|(verdict, _)| verdict)
}

/// [`check`], also returning counters about the search.
pub fn check_with_stats<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    budget: u64,
) -> Result<(Verdict, CheckStats), HistoryError> {
    validate_ops(history)?;
    let parts = model.partition(history);
    validate_partition(history.len(), &parts)?;
    let mut stats = CheckStats {
        partitions: parts.len(),
        ..CheckStats::default()
    };
    for (index, part) in parts.iter().enumerate() {
        let outcome = search::search(model, history, part, budget, &mut stats);
        match outcome {
            search::Outcome::Linearizable => stats.partitions_checked += 1,
            search::Outcome::Violation(detail) => {
                stats.partitions_checked += 1;
                let verdict = Verdict::NotLinearizable {
                    partition: index,
                    detail,
                };
                return Ok((verdict, stats));
            }
            search::Outcome::OutOfBudget => {
                let reason = format!(
                    "search budget of {budget} steps exhausted in partition {index} ({} ops), \
                     after {} of {} partitions were found linearizable",
                    part.len(),
                    stats.partitions_checked,
                    parts.len()
                );
                return Ok((Verdict::Unknown { reason }, stats));
            }
        }
    }
    Ok((Verdict::Linearizable, stats))
}

fn validate_ops<I, O>(history: &[Operation<I, O>]) -> Result<(), HistoryError> {
    for (index, op) in history.iter().enumerate() {
        if op.ret.is_some() != op.output.is_some() {
            return Err(HistoryError::OutputMismatch { index });
        }
        if let Some(ret) = op.ret {
            if ret < op.call {
                return Err(HistoryError::ReturnBeforeCall {
                    index,
                    call: op.call,
                    ret,
                });
            }
        }
    }
    Ok(())
}

fn validate_partition(len: usize, parts: &[Vec<usize>]) -> Result<(), HistoryError> {
    let mut seen = vec![false; len];
    for &index in parts.iter().flatten() {
        match seen.get_mut(index) {
            None => return Err(HistoryError::PartitionOutOfRange { index }),
            Some(true) => return Err(HistoryError::PartitionDuplicate { index }),
            Some(slot) => *slot = true,
        }
    }
    match seen.iter().position(|&s| !s) {
        Some(index) => Err(HistoryError::PartitionMissing { index }),
        None => Ok(()),
    }
}
