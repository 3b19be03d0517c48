//! Cluster membership, changed one server at a time (Raft thesis §4.1–4.2).
//!
//! A configuration is a set of voters and a set of learners (non-voting members that receive the
//! log). A change adds a learner, promotes a learner to voter, or removes a server. Adding one
//! voter at a time keeps every majority of the old set intersecting every majority of the new,
//! so no joint consensus is needed. New servers join as learners and are promoted only once
//! they have caught up (the application decides when, from [`super::Raft::progress`]), so a
//! slow newcomer never stalls commits (thesis §4.2.1).
//!
//! A configuration takes effect on each server as soon as its entry is in that server's log,
//! committed or not; if the entry is truncated away, the previous configuration returns. A
//! leader proposes a change only once the previous one is committed and once it has committed
//! an entry of its own term (the fix to the single-server algorithm published by Ongaro, 2015).

use std::collections::BTreeSet;

/// A membership change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConfChange<P> {
    /// Add a non-voting member that receives the log.
    AddLearner(P),
    /// Make a learner a voter.
    Promote(P),
    /// Remove a voter or learner.
    Remove(P),
}

/// Why a membership change was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfChangeError {
    /// The server is already a member (`AddLearner`), or is not a learner (`Promote`), or not a
    /// member at all (`Remove`).
    NotApplicable,
    /// Removing the last voter would leave no one to decide anything.
    LastVoter,
    /// The configuration already holds the maximum number of members.
    TooManyMembers,
}

/// Voters and learners.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Membership<P: Ord> {
    /// Members whose votes count.
    pub voters: BTreeSet<P>,
    /// Members that receive the log but do not vote.
    pub learners: BTreeSet<P>,
}

/// Most members (voters and learners together) a configuration may hold; bounds decoding and
/// the leader's per-follower state.
pub const MAX_MEMBERS: usize = 64;

impl<P: Ord + Copy> Membership<P> {
    /// A configuration of `voters` and no learners.
    pub fn new(voters: impl IntoIterator<Item = P>) -> Self {
        Membership {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    /// Whether `p` votes.
    pub fn is_voter(&self, p: &P) -> bool {
        self.voters.contains(p)
    }

    /// Whether `p` is a voter or learner.
    pub fn contains(&self, p: &P) -> bool {
        self.voters.contains(p) || self.learners.contains(p)
    }

    /// Every member, voters first.
    pub fn members(&self) -> impl Iterator<Item = &P> {
        self.voters.iter().chain(self.learners.iter())
    }

    /// Votes needed for a majority.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Whether the voters for which `yes` holds form a majority.
    pub fn has_quorum(&self, mut yes: impl FnMut(&P) -> bool) -> bool {
        !self.voters.is_empty() && self.voters.iter().filter(|p| yes(p)).count() >= self.quorum()
    }

    /// The largest value that a majority of voters have reached, given each voter's value; 0
    /// with no voters.
    pub fn quorum_value(&self, mut value: impl FnMut(&P) -> u64) -> u64 {
        let mut values: Vec<u64> = self.voters.iter().map(&mut value).collect();
        if values.is_empty() {
            return 0;
        }
        values.sort_unstable_by(|a, b| b.cmp(a));
        values[self.quorum() - 1]
    }

    /// The configuration after `change`, or why it cannot be made.
    pub fn apply(&self, change: &ConfChange<P>) -> Result<Self, ConfChangeError> {
        let mut next = self.clone();
        match change {
            ConfChange::AddLearner(p) => {
                if self.contains(p) {
                    return Err(ConfChangeError::NotApplicable);
                }
                if self.voters.len() + self.learners.len() >= MAX_MEMBERS {
                    return Err(ConfChangeError::TooManyMembers);
                }
                next.learners.insert(*p);
            }
            ConfChange::Promote(p) => {
                if !next.learners.remove(p) {
                    return Err(ConfChangeError::NotApplicable);
                }
                next.voters.insert(*p);
            }
            ConfChange::Remove(p) => {
                if self.voters.len() == 1 && self.voters.contains(p) {
                    return Err(ConfChangeError::LastVoter);
                }
                if !next.voters.remove(p) && !next.learners.remove(p) {
                    return Err(ConfChangeError::NotApplicable);
                }
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_value_is_the_majority_low_water_mark() {
        let m = Membership::new([1u32, 2, 3, 4, 5]);
        let matched = [(1, 9), (2, 7), (3, 3), (4, 8), (5, 1)];
        let v = m.quorum_value(|p| matched.iter().find(|(q, _)| q == p).unwrap().1);
        assert_eq!(v, 7, "three of five have reached 7");
        assert_eq!(Membership::<u32>::default().quorum_value(|_| 5), 0);
    }

    #[test]
    fn one_change_at_a_time_rules() {
        let m = Membership::new([1u32, 2, 3]);
        let m = m.apply(&ConfChange::AddLearner(4)).unwrap();
        assert!(!m.is_voter(&4) && m.contains(&4));
        assert_eq!(m.quorum(), 2, "learners do not count");
        assert_eq!(
            m.apply(&ConfChange::AddLearner(4)),
            Err(ConfChangeError::NotApplicable)
        );
        assert_eq!(
            m.apply(&ConfChange::Promote(1)),
            Err(ConfChangeError::NotApplicable)
        );
        let m = m.apply(&ConfChange::Promote(4)).unwrap();
        assert_eq!(m.quorum(), 3);
        let m = m.apply(&ConfChange::Remove(1)).unwrap();
        assert!(!m.contains(&1));
        let solo = Membership::new([7u32]);
        assert_eq!(
            solo.apply(&ConfChange::Remove(7)),
            Err(ConfChangeError::LastVoter)
        );
    }
}
