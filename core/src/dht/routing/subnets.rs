//! The subnet limits (S/Kademlia's IP diversity): the check of both limits, and the hashed
//! counters that spare the table-wide one a scan (the [module docs](super) explain the trade).

use super::RoutingTable;
use crate::dht::{Contact, Subnet};

/// Counters per subnet hash: each is the number of held contacts whose subnet hashes to it, so
/// an upper bound on the count of any one of those subnets.
#[derive(Clone, Debug)]
pub(super) struct SubnetCounts([u16; SUBNET_SLOTS]);

const SUBNET_SLOTS: usize = 64;

impl SubnetCounts {
    fn slot(subnet: Subnet) -> usize {
        // Fibonacci hashing: the top 6 bits of the product depend on every bit of the subnet.
        (subnet.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
    }

    pub(super) fn upper_bound(&self, subnet: Subnet) -> usize {
        usize::from(self.0[Self::slot(subnet)])
    }

    fn add(&mut self, subnet: Subnet) {
        let n = &mut self.0[Self::slot(subnet)];
        *n = n.saturating_add(1);
    }

    pub(super) fn remove(&mut self, subnet: Subnet) {
        let n = &mut self.0[Self::slot(subnet)];
        // A saturated counter stays saturated: it no longer knows the true sum, and only left
        // alone is it still an upper bound.
        if *n != u16::MAX {
            *n = n.saturating_sub(1);
        }
    }
}

impl<C: Contact> RoutingTable<C> {
    /// Whether a contact of `subnet` may join bucket depth `d`.
    pub(super) fn fits_subnet_limits(&self, subnet: Option<Subnet>, d: usize) -> bool {
        let Some(subnet) = subnet else {
            return true;
        };
        let per_bucket = self.config.max_per_subnet_bucket;
        let in_bucket = if d < self.buckets.len() {
            self.count_subnet(d, subnet, per_bucket)
        } else {
            0
        };
        if in_bucket >= per_bucket {
            return false;
        }
        let per_table = self.config.max_per_subnet_table;
        let bound = self.subnets.as_ref().map_or(0, |s| s.upper_bound(subnet));
        if bound < per_table {
            return true;
        }
        // The counter may include other subnets: count exactly.
        let in_table: usize = (0..self.buckets.len())
            .map(|d| self.count_subnet(d, subnet, per_table))
            .sum();
        in_table < per_table
    }

    /// Books a contact of `subnet` just added to a bucket.
    pub(super) fn counted(&mut self, subnet: Option<Subnet>) {
        self.len += 1;
        if let Some(subnet) = subnet {
            self.subnets
                .get_or_insert_with(|| Box::new(SubnetCounts([0; SUBNET_SLOTS])))
                .add(subnet);
        }
    }
}
