//! The wire encoding of a [`NodeContact`], shared by every protocol that passes contacts on
//! (the DHT's `Nodes` and `Value` answers, gossip's joins and shuffles).
//!
//! ```text
//! contact  = peer:32B family:u8 ip port:u16be
//! family   = 4 (then ip = 4 bytes) | 6 (then ip = 16 bytes); any other byte is refused
//! contacts = count:varint contact*, count <= min(MAX_WIRE_CONTACTS, max_list_len)
//! ```
//!
//! The port is big-endian (network order, as addresses are written everywhere else). An IPv6
//! address travels without its flow label and scope id (they mean nothing to the receiver), so
//! those decode as zero; everything else re-encodes to the bytes it came from.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes};

use super::codec::{get_array, get_u8};
use super::error::DecodeError;
use super::peer::WirePeer;
use crate::contact::NodeContact;
use crate::id::PeerId;

/// Most contacts one decoded contact list may hold.
///
/// An honest DHT answer never holds more than k contacts (20 by default), and a gossip shuffle
/// fewer; 32 leaves room for a somewhat larger configured k while capping what one hostile
/// message can make a node allocate and then check, independently of the (much larger) generic
/// `max_list_len`.
pub const MAX_WIRE_CONTACTS: usize = 32;

const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;

/// The fewest bytes a contact takes: peer id, family, IPv4 address, port.
const MIN_CONTACT_LEN: usize = 32 + 1 + 4 + 2;

impl WirePeer for NodeContact {
    const MIN_ENCODED_LEN: usize = MIN_CONTACT_LEN;

    fn encoded_len(&self) -> usize {
        let ip_len = match self.addr {
            SocketAddr::V4(_) => 4,
            SocketAddr::V6(_) => 16,
        };
        32 + 1 + ip_len + 2
    }

    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(self.peer.as_bytes());
        match self.addr.ip() {
            IpAddr::V4(ip) => {
                buf.put_u8(FAMILY_V4);
                buf.put_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                buf.put_u8(FAMILY_V6);
                buf.put_slice(&ip.octets());
            }
        }
        buf.put_u16(self.addr.port());
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        let peer = PeerId::from_bytes(get_array(buf)?);
        let ip = match get_u8(buf)? {
            FAMILY_V4 => IpAddr::V4(Ipv4Addr::from(get_array::<4, _>(buf)?)),
            FAMILY_V6 => IpAddr::V6(Ipv6Addr::from(get_array::<16, _>(buf)?)),
            _ => return Err(DecodeError::InvalidValue { field: "family" }),
        };
        let port = u16::from_be_bytes(get_array(buf)?);
        Ok(NodeContact {
            peer,
            addr: SocketAddr::new(ip, port),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::peer::{get_peer_list, put_peer_list};
    use crate::wire::Limits;

    fn contact(i: u8, addr: &str) -> NodeContact {
        NodeContact {
            peer: PeerId::from_bytes([i; 32]),
            addr: addr.parse().unwrap(),
        }
    }

    #[test]
    fn the_format_is_as_documented() {
        let mut out = Vec::new();
        contact(1, "192.0.2.1:4001").encode(&mut out);
        let mut expected = vec![1; 32];
        expected.extend_from_slice(&[4, 192, 0, 2, 1, 0x0f, 0xa1]);
        assert_eq!(out, expected);

        let v6 = contact(2, "[2001:db8::2]:4002");
        let mut out = Vec::new();
        v6.encode(&mut out);
        let mut expected = vec![2; 32];
        expected.push(6);
        expected.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        expected.extend_from_slice(&[0x0f, 0xa2]);
        assert_eq!(out, expected);
        assert_eq!(v6.encoded_len(), out.len());
        assert_eq!(NodeContact::decode(&mut Bytes::from(out)), Ok(v6));
    }

    #[test]
    fn unknown_families_and_short_input_are_refused() {
        let mut out = Vec::new();
        contact(1, "192.0.2.1:9").encode(&mut out);
        let mut bad = out.clone();
        bad[32] = 5;
        assert_eq!(
            NodeContact::decode(&mut Bytes::from(bad)),
            Err(DecodeError::InvalidValue { field: "family" })
        );
        for cut in 0..out.len() {
            assert!(NodeContact::decode(&mut Bytes::copy_from_slice(&out[..cut])).is_err());
        }
    }

    #[test]
    fn ipv6_scope_and_flow_label_are_not_sent() {
        let scoped = contact(1, "[fe80::1%7]:9");
        let mut out = Vec::new();
        scoped.encode(&mut out);
        assert_eq!(
            NodeContact::decode(&mut Bytes::from(out)).map(|c| c.addr),
            Ok("[fe80::1]:9".parse().unwrap())
        );
    }

    #[test]
    fn contact_lists_are_capped() {
        let list: Vec<NodeContact> = (0..=MAX_WIRE_CONTACTS as u8)
            .map(|i| contact(i, "192.0.2.1:1"))
            .collect();
        let mut out = Vec::new();
        put_peer_list(&mut out, list.iter());
        assert_eq!(
            get_peer_list::<NodeContact>(
                &mut Bytes::from(out),
                &Limits::default(),
                MAX_WIRE_CONTACTS
            ),
            Err(DecodeError::ListTooLong {
                len: MAX_WIRE_CONTACTS as u64 + 1,
                max: MAX_WIRE_CONTACTS as u32
            })
        );
    }
}
