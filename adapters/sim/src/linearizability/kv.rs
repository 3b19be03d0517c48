//! A key-value store model: get, put and compare-and-set, partitioned by key.

use std::collections::{BTreeMap, BTreeSet};

use super::{Model, Operation};

/// A request to the key-value store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    /// Read a key: `Get(key)`; answered with [`KvOutput::Value`].
    Get(u64),
    /// Write a key: `Put(key, value)`; answered with [`KvOutput::Ok`].
    Put(u64, u64),
    /// Set `key` to `new` if its current value is `expect` (`None`: the key is absent); answered
    /// with [`KvOutput::CasResult`].
    Cas {
        /// The key.
        key: u64,
        /// The value it must hold, `None` for absent.
        expect: Option<u64>,
        /// The value to write.
        new: u64,
    },
}

impl KvInput {
    /// The key the request is about.
    pub fn key(&self) -> u64 {
        match *self {
            KvInput::Get(key) | KvInput::Put(key, _) | KvInput::Cas { key, .. } => key,
        }
    }
}

/// A response from the key-value store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// The value read (`None`: absent).
    Value(Option<u64>),
    /// A put was applied.
    Ok,
    /// Whether a compare-and-set was applied.
    CasResult(bool),
}

/// A linearizable key-value store with every key initially absent.
///
/// [`Model::partition`] splits a history by key (parts in increasing key order), so each key is
/// checked on its own and the model's state is the value of that part's single key: `step`
/// ignores the key in the input.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

impl Model for KvModel {
    type State = Option<u64>;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Option<u64> {
        None
    }

    fn step(&self, state: &Option<u64>, input: &KvInput) -> (Option<u64>, KvOutput) {
        match *input {
            KvInput::Get(_) => (*state, KvOutput::Value(*state)),
            KvInput::Put(_, value) => (Some(value), KvOutput::Ok),
            KvInput::Cas { expect, new, .. } => {
                if *state == expect {
                    (Some(new), KvOutput::CasResult(true))
                } else {
                    (*state, KvOutput::CasResult(false))
                }
            }
        }
    }

    fn partition(&self, history: &[Operation<KvInput, KvOutput>]) -> Vec<Vec<usize>> {
        let mut by_key: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (index, op) in history.iter().enumerate() {
            by_key.entry(op.input.key()).or_default().push(index);
        }
        by_key.into_values().collect()
    }

    /// Within one key: pending reads, and pending writes of a value nothing needs, unless a
    /// completed compare-and-set that failed returned after the write's call. A value is needed
    /// when a completed read returned it, a completed compare-and-set expecting it succeeded, or a
    /// kept pending compare-and-set expects it. Why leaving those out is sound: in a
    /// linearization that uses one, it starts a stretch where the key holds an unneeded value,
    /// ending at the next kept write. No completed get or successful compare-and-set can witness
    /// that value, nor can a failed compare-and-set linearized before the write's call; kept
    /// pending compare-and-sets in the stretch fail, so dropping them as well leaves every
    /// completed output unchanged.
    fn useless_pending(
        &self,
        history: &[Operation<KvInput, KvOutput>],
        part: &[usize],
    ) -> Vec<usize> {
        let mut needed = BTreeSet::new();
        // The latest return of a failed compare-and-set: a write called after it is safe.
        let mut last_failed_cas: Option<u64> = None;
        for &i in part {
            let op = &history[i];
            match (op.input, op.output) {
                (KvInput::Get(_), Some(KvOutput::Value(Some(v)))) => {
                    needed.insert(v);
                }
                (KvInput::Cas { expect, .. }, Some(KvOutput::CasResult(true))) => {
                    needed.extend(expect);
                }
                (KvInput::Cas { .. }, Some(KvOutput::CasResult(false))) => {
                    last_failed_cas = last_failed_cas.max(op.ret);
                }
                _ => {}
            }
        }
        let pending = || part.iter().copied().filter(|&i| history[i].ret.is_none());
        let may_witness_failed_cas =
            |i: usize| last_failed_cas.is_some_and(|r| history[i].call <= r);
        let kept = |i: usize, needed: &BTreeSet<u64>| match history[i].input {
            KvInput::Get(_) => false,
            KvInput::Put(_, value) => needed.contains(&value) || may_witness_failed_cas(i),
            KvInput::Cas { new, .. } => needed.contains(&new) || may_witness_failed_cas(i),
        };
        // A kept pending compare-and-set needs its expected value: close over them.
        let mut grew = true;
        while grew {
            grew = false;
            for i in pending() {
                if let KvInput::Cas {
                    expect: Some(e), ..
                } = history[i].input
                {
                    if kept(i, &needed) && needed.insert(e) {
                        grew = true;
                    }
                }
            }
        }
        pending().filter(|&i| !kept(i, &needed)).collect()
    }
}
