//! What the DHT knows about another node: its key, and enough of its address to limit how many
//! contacts one network may place in our table.

use core::fmt::Debug;
use core::hash::Hash;
use std::net::IpAddr;

pub use crate::contact::NodeContact;
use crate::id::{Distance, Key};

/// A network group for the routing table's diversity limits: an IPv4 /24 or an IPv6 /48.
///
/// Eclipse attacks (Heilman et al. 2015; Prünster et al. 2018 for Kademlia) fill a victim's table
/// from a few cheap address blocks; capping contacts per group makes that expensive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet(pub u64);

impl Subnet {
    /// The group of `ip`, or `None` for addresses that name this host (loopback, unspecified):
    /// those are local test networks, where every node shares one address and no limit can apply.
    pub fn of(ip: IpAddr) -> Option<Subnet> {
        if ip.is_loopback() || ip.is_unspecified() {
            return None;
        }
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Some(Subnet(u64::from_be_bytes([4, 0, 0, 0, 0, a, b, c])))
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Subnet::of(IpAddr::V4(v4)),
                None => {
                    let o = v6.octets();
                    Some(Subnet(u64::from_be_bytes([
                        6, 0, o[0], o[1], o[2], o[3], o[4], o[5],
                    ])))
                }
            },
        }
    }
}

/// A node as the routing table stores it.
///
/// Real nodes use [`NodeContact`] (identity plus dialable address); the simulator uses a 4-byte
/// handle whose key is derived from the handle, so a million routing tables fit in memory
/// (DESIGN.md §3).
pub trait Contact: Copy + Eq + Hash + Debug {
    /// The node's position in the keyspace.
    fn key(&self) -> Key;
    /// The network group the node's address falls in, if diversity limits apply to it.
    fn subnet(&self) -> Option<Subnet>;
    /// XOR distance from the node's key to `target`, which the default computes as
    /// `self.key().distance(target)`. Lookups and routing tables call this for every contact
    /// they handle (a hundred times per message); a contact that derives its key on demand,
    /// as the simulator's does, can compute the distance without building the key.
    #[inline]
    fn distance_to(&self, target: &Key) -> Distance {
        self.key().distance(target)
    }
}

impl Contact for NodeContact {
    fn key(&self) -> Key {
        *self.peer.key()
    }
    fn subnet(&self) -> Option<Subnet> {
        Subnet::of(self.addr.ip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_group_by_prefix() {
        let a = Subnet::of("203.0.113.5".parse().unwrap());
        let b = Subnet::of("203.0.113.200".parse().unwrap());
        let c = Subnet::of("203.0.114.5".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(Subnet::of("127.0.0.1".parse().unwrap()), None);
        let mapped = Subnet::of("::ffff:203.0.113.9".parse().unwrap());
        assert_eq!(mapped, a);
        let v6a = Subnet::of("2001:db8:1:2::1".parse().unwrap());
        let v6b = Subnet::of("2001:db8:1:3::1".parse().unwrap());
        let v6c = Subnet::of("2001:db8:2:2::1".parse().unwrap());
        assert_eq!(v6a, v6b);
        assert_ne!(v6a, v6c);
    }
}
