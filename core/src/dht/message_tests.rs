//! Tests of the DHT message codec: round trips, the documented layout, and every way a body
//! can be refused.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use bytes::BytesMut;

use super::*;
use crate::contact::NodeContact;
use crate::wire::{decode_message, encode_message, message_to_frame, Frame};

/// The fewest bytes a contact takes on the wire.
const MIN_CONTACT_LEN: usize = NodeContact::MIN_ENCODED_LEN;

type Msg = DhtMessage<NodeContact>;

fn contact(i: u8, v6: bool) -> NodeContact {
    let ip: IpAddr = if v6 {
        format!("2001:db8::{i}").parse().unwrap()
    } else {
        format!("192.0.2.{i}").parse().unwrap()
    };
    NodeContact {
        peer: PeerId::from_bytes([i; 32]),
        addr: SocketAddr::new(ip, 4000 + u16::from(i)),
    }
}

fn record(len: usize) -> Box<Record> {
    Box::new(Record {
        key: Key::from_bytes([7; 32]),
        value: Bytes::from(vec![b'v'; len]),
        publisher: PeerId::from_bytes([8; 32]),
        ttl_secs: 3600,
    })
}

/// Every variant, with empty and non-empty lists, both address families, and varints of
/// one and several bytes.
fn samples() -> Vec<Msg> {
    let contacts = vec![contact(1, false), contact(2, true), contact(3, false)];
    vec![
        DhtMessage::Ping { id: 0 },
        DhtMessage::Pong { id: u64::MAX },
        DhtMessage::FindNode {
            id: 300,
            target: Key::from_bytes([5; 32]),
        },
        DhtMessage::Nodes {
            id: 1,
            contacts: contacts.clone(),
        },
        DhtMessage::Nodes {
            id: 1,
            contacts: vec![],
        },
        DhtMessage::FindValue {
            id: 2,
            key: Key::from_bytes([6; 32]),
        },
        DhtMessage::Value {
            id: 3,
            record: record(5),
            contacts: contacts.clone(),
        },
        DhtMessage::Value {
            id: 3,
            record: Box::new(Record {
                ttl_secs: u32::MAX,
                ..*record(0)
            }),
            contacts: vec![],
        },
        DhtMessage::Store {
            id: 4,
            record: record(200),
        },
        DhtMessage::Stored {
            id: 5,
            result: StoreResult::Accepted,
        },
        DhtMessage::Stored {
            id: 6,
            result: StoreResult::Rejected,
        },
        DhtMessage::Stored {
            id: 7,
            result: StoreResult::Full,
        },
    ]
}

fn decode(msg_type: u8, body: impl Into<Bytes>) -> Result<Msg, DecodeError> {
    decode_message(
        Frame::new(ProtocolId::DHT, msg_type, body.into()),
        &Limits::DEFAULT,
    )
}

#[test]
fn every_message_round_trips() {
    for msg in samples() {
        // Through a whole encoded frame, as a stream carries it...
        let mut out = BytesMut::new();
        encode_message(&msg, &mut out);
        let mut wire = out.freeze();
        let frame = Frame::decode(&mut wire, &Limits::DEFAULT).unwrap();
        assert!(wire.is_empty());
        assert_eq!(frame.body.len(), msg.body_len(), "{}", msg.kind());
        assert_eq!(decode_message(frame, &Limits::DEFAULT), Ok(msg.clone()));
        // ...and through a frame value.
        let frame = message_to_frame(&msg);
        assert_eq!(decode_message(frame, &Limits::DEFAULT), Ok(msg));
    }
}

#[test]
fn the_format_is_as_documented() {
    let ping: Msg = DhtMessage::Ping { id: 300 };
    let frame = message_to_frame(&ping);
    assert_eq!(
        (frame.msg_type, frame.body.as_ref()),
        (0, &[0xac, 0x02][..])
    );

    let stored: Msg = DhtMessage::Stored {
        id: 9,
        result: StoreResult::Full,
    };
    assert_eq!(message_to_frame(&stored).body.as_ref(), &[9, 2]);

    let nodes: Msg = DhtMessage::Nodes {
        id: 1,
        contacts: vec![contact(1, false), contact(2, true)],
    };
    let frame = message_to_frame(&nodes);
    let mut expected = vec![1, 2];
    expected.extend_from_slice(&[1; 32]);
    expected.extend_from_slice(&[4, 192, 0, 2, 1, 0x0f, 0xa1]); // 192.0.2.1:4001
    expected.extend_from_slice(&[2; 32]);
    expected.push(6);
    expected.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    expected.extend_from_slice(&[0x0f, 0xa2]); // port 4002
    assert_eq!((frame.msg_type, frame.body.as_ref()), (3, &expected[..]));

    let store: Msg = DhtMessage::Store {
        id: 2,
        record: record(3),
    };
    let frame = message_to_frame(&store);
    let mut expected = vec![2];
    expected.extend_from_slice(&[7; 32]);
    expected.extend_from_slice(&[8; 32]);
    expected.extend_from_slice(&[0x90, 0x1c]); // ttl 3600
    expected.extend_from_slice(&[3, b'v', b'v', b'v']);
    assert_eq!((frame.msg_type, frame.body.as_ref()), (6, &expected[..]));
}

#[test]
fn every_truncation_is_an_error() {
    for msg in samples() {
        let frame = message_to_frame(&msg);
        for cut in 0..frame.body.len() {
            let result = decode(frame.msg_type, frame.body.slice(..cut));
            assert!(result.is_err(), "{} cut at {cut}: {result:?}", msg.kind());
        }
    }
}

#[test]
fn trailing_bytes_are_refused() {
    for msg in samples() {
        let frame = message_to_frame(&msg);
        let mut body = frame.body.to_vec();
        body.push(0);
        assert_eq!(
            decode(frame.msg_type, body),
            Err(DecodeError::TrailingBytes { count: 1 }),
            "{}",
            msg.kind()
        );
    }
}

#[test]
fn contact_lists_are_bounded_before_allocating() {
    let list = |n: usize| -> Msg {
        DhtMessage::Nodes {
            id: 1,
            contacts: (0..n).map(|i| contact(i as u8, false)).collect(),
        }
    };
    let at_bound = message_to_frame(&list(MAX_WIRE_CONTACTS));
    assert!(decode_message::<Msg>(at_bound, &Limits::DEFAULT).is_ok());
    let over = message_to_frame(&list(MAX_WIRE_CONTACTS + 1));
    assert_eq!(
        decode_message::<Msg>(over, &Limits::DEFAULT),
        Err(DecodeError::ListTooLong {
            len: MAX_WIRE_CONTACTS as u64 + 1,
            max: MAX_WIRE_CONTACTS as u32
        })
    );
    // A tighter configured limit wins.
    let tight = Limits {
        max_list_len: 2,
        ..Limits::DEFAULT
    };
    assert_eq!(
        decode_message::<Msg>(message_to_frame(&list(3)), &tight),
        Err(DecodeError::ListTooLong { len: 3, max: 2 })
    );
    // A huge count with no items behind it fails on the count, not on an allocation.
    let mut body = vec![1];
    put_varint(&mut body, u64::MAX);
    assert!(matches!(
        decode(NODES, body),
        Err(DecodeError::ListTooLong { .. })
    ));
    // A count the bytes left cannot hold fails before the first item is read.
    assert_eq!(
        decode(VALUE, {
            let mut b = message_to_frame(&DhtMessage::<NodeContact>::Store {
                id: 1,
                record: record(0),
            })
            .body
            .to_vec();
            b.push(2);
            b.extend_from_slice(&[0; MIN_CONTACT_LEN]);
            b
        }),
        Err(DecodeError::UnexpectedEnd {
            needed: 2 * MIN_CONTACT_LEN,
            remaining: MIN_CONTACT_LEN
        })
    );
}

#[test]
fn bad_fields_are_refused() {
    // Unknown address family.
    let frame = message_to_frame(&DhtMessage::Nodes {
        id: 1,
        contacts: vec![contact(1, false)],
    });
    let mut body = frame.body.to_vec();
    body[1 + 1 + 32] = 5;
    assert_eq!(
        decode(NODES, body),
        Err(DecodeError::InvalidValue { field: "family" })
    );
    // Unknown store result.
    assert_eq!(
        decode(STORED, &[1u8, 3][..]),
        Err(DecodeError::InvalidValue { field: "result" })
    );
    // Over-long request id (zero in two bytes).
    assert_eq!(
        decode(PING, &[0x80u8, 0x00][..]),
        Err(DecodeError::VarintNonCanonical)
    );
    // A TTL wider than 32 bits.
    let mut body = vec![1];
    body.extend_from_slice(&[0; 64]);
    put_varint(&mut body, 1 << 32);
    body.push(0);
    assert_eq!(decode(STORE, body), Err(DecodeError::VarintOverflow));
    // A value above the byte-string limit.
    let small = Limits {
        max_bytes_len: 4,
        ..Limits::DEFAULT
    };
    assert_eq!(
        decode_message::<Msg>(
            message_to_frame(&DhtMessage::<NodeContact>::Store {
                id: 1,
                record: record(5)
            }),
            &small
        ),
        Err(DecodeError::BytesTooLong { len: 5, max: 4 })
    );
    // Unknown types, whatever the body.
    for msg_type in [8u8, 0x80, u8::MAX] {
        for body in [&[][..], &[1][..]] {
            assert_eq!(
                decode(msg_type, body),
                Err(DecodeError::UnknownMessageType {
                    protocol: ProtocolId::DHT,
                    msg_type
                })
            );
        }
    }
}

#[test]
fn values_are_slices_of_the_frame() {
    let frame = message_to_frame(&DhtMessage::<NodeContact>::Store {
        id: 1,
        record: record(100),
    });
    let body_range = frame.body.as_ptr_range();
    let Ok(DhtMessage::Store { record, .. }) = decode_message::<Msg>(frame, &Limits::DEFAULT)
    else {
        panic!("store did not decode");
    };
    assert!(body_range.contains(&record.value.as_ptr()));
}

#[test]
fn ipv6_scope_and_flow_label_are_not_sent() {
    let scoped = NodeContact {
        peer: PeerId::from_bytes([1; 32]),
        addr: "[fe80::1%7]:9".parse().unwrap(),
    };
    let msg: Msg = DhtMessage::Nodes {
        id: 1,
        contacts: vec![scoped],
    };
    let Ok(DhtMessage::Nodes { contacts, .. }) =
        decode_message::<Msg>(message_to_frame(&msg), &Limits::DEFAULT)
    else {
        panic!("nodes did not decode");
    };
    assert_eq!(contacts[0].addr, "[fe80::1]:9".parse().unwrap());
}

#[test]
fn accessors_name_each_variant() {
    let kinds: Vec<(&str, bool, RequestId)> = samples()
        .iter()
        .map(|m| (m.kind(), m.is_request(), m.request_id()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("PING", true, 0),
            ("PONG", false, u64::MAX),
            ("FIND_NODE", true, 300),
            ("NODES", false, 1),
            ("NODES", false, 1),
            ("FIND_VALUE", true, 2),
            ("VALUE", false, 3),
            ("VALUE", false, 3),
            ("STORE", true, 4),
            ("STORED", false, 5),
            ("STORED", false, 6),
            ("STORED", false, 7),
        ]
    );
    assert_eq!(record(10).size(), 10 + RECORD_OVERHEAD);
}
