//! `ConnSet` driven directly over loopback, its upstream a recorder.

use std::net::TcpListener;
use std::time::Duration as StdDuration;

use mio::{Events, Poll};
use starling_core::identity::Identity;
use starling_core::session::CloseCode;
use starling_core::wire::ProtocolId;

use super::*;

#[derive(Debug, PartialEq)]
enum Seen {
    Established(ConnId, PeerId),
    Frame(ConnId, Frame),
    Closed(ConnId, CloseCause, Option<SocketAddr>),
    Backpressure(ConnId, bool),
}

#[derive(Default)]
struct Recorder {
    seen: Vec<Seen>,
    settled: usize,
}

impl Upstream for Recorder {
    fn established(&mut self, _: Instant, conn: ConnId, peer: PeerId, _: Option<u16>) {
        self.seen.push(Seen::Established(conn, peer));
    }
    fn frame(&mut self, _: Instant, conn: ConnId, frame: Frame) {
        self.seen.push(Seen::Frame(conn, frame));
    }
    fn closed(&mut self, _: Instant, conn: ConnId, cause: CloseCause, failed: Option<SocketAddr>) {
        self.seen.push(Seen::Closed(conn, cause, failed));
    }
    fn backpressure(&mut self, _: Instant, conn: ConnId, paused: bool) {
        self.seen.push(Seen::Backpressure(conn, paused));
    }
    fn settle(&mut self, _: &mut ConnSet) {
        self.settled += 1;
    }
}

/// One thread's connections with their poller, as a runtime holds them.
struct Runtime {
    poll: Poll,
    events: Events,
    set: ConnSet,
    up: Recorder,
    clock: Clock,
}

impl Runtime {
    fn new(seed: u64) -> Runtime {
        let poll = Poll::new().unwrap();
        let clock = Clock::start();
        let setup = ConnSetup {
            session: Arc::new(SessionConfig::new("conn-set-test")),
            keys: Arc::new(NodeKeys::new(
                Identity::from_test_seed(seed),
                [seed as u8; 32],
            )),
            high_water: 1 << 20,
            low_water: 256 << 10,
            chunk_size: 16 << 10,
            pool_chunks: 4,
            clock,
        };
        let set = ConnSet::new(poll.registry().try_clone().unwrap(), setup);
        Runtime {
            poll,
            events: Events::with_capacity(64),
            set,
            up: Recorder::default(),
            clock,
        }
    }

    /// One turn of the loop every runtime runs.
    fn turn(&mut self) {
        self.set.flush(&mut self.up);
        self.poll
            .poll(&mut self.events, Some(StdDuration::from_millis(5)))
            .unwrap();
        let now = self.clock.now();
        for event in self.events.iter() {
            self.set.ready(now, event, &mut self.up);
        }
        self.set.end_turn(now, &mut self.up);
        self.set.flush(&mut self.up);
    }
}

/// Turns both runtimes until `done` holds of them, or fails after a while.
fn run_until(a: &mut Runtime, b: &mut Runtime, done: impl Fn(&Runtime, &Runtime) -> bool) {
    for _ in 0..2000 {
        if done(a, b) {
            return;
        }
        a.turn();
        b.turn();
    }
    panic!(
        "no progress: a saw {:?}, b saw {:?}",
        a.up.seen.len(),
        b.up.seen.len()
    );
}

fn frames_of(seen: &[Seen], conn: ConnId) -> Vec<&Frame> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Frame(c, f) if *c == conn => Some(f),
            _ => None,
        })
        .collect()
}

/// `a` dials `b`, which adopts the connection: (a's id, b's id).
fn connected_pair(a: &mut Runtime, b: &mut Runtime) -> (ConnId, ConnId) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let now = a.clock.now();
    a.set.dial(now, 3, addr, None).unwrap();
    let (stream, from) = listener.accept().unwrap();
    stream.set_nonblocking(true).unwrap();
    let now = b.clock.now();
    b.set
        .adopt(now, 9, TcpStream::from_std(stream), from)
        .unwrap();
    let b_id = Identity::from_test_seed(2).peer_id();
    let a_id = Identity::from_test_seed(1).peer_id();
    run_until(a, b, |a, b| {
        a.up.seen.contains(&Seen::Established(3, b_id))
            && b.up.seen.contains(&Seen::Established(9, a_id))
    });
    (3, 9)
}

#[test]
fn frames_arrive_in_order_and_a_close_reaches_the_peer() {
    let (mut a, mut b) = (Runtime::new(1), Runtime::new(2));
    let (on_a, on_b) = connected_pair(&mut a, &mut b);
    let sent: Vec<Frame> = (0..3000u32)
        .map(|i| {
            let size = if i % 10 == 0 { 1000 } else { 40 };
            let mut body = vec![(i % 251) as u8; size];
            body[..4].copy_from_slice(&i.to_le_bytes());
            Frame::new(ProtocolId::GOSSIP, 1, body)
        })
        .collect();
    for chunk in sent.chunks(100) {
        a.set.send(on_a, chunk);
        a.turn();
        b.turn();
    }
    run_until(&mut a, &mut b, |_, b| {
        frames_of(&b.up.seen, on_b).len() == sent.len()
    });
    let received = frames_of(&b.up.seen, on_b);
    assert!(received.iter().zip(&sent).all(|(r, s)| *r == s));
    assert!(b.up.settled > 0, "every step ends with a settle");
    assert_eq!(a.set.stats().send_refused, 0);

    let now = a.clock.now();
    a.set.close(now, on_a, CloseCode::Normal);
    run_until(&mut a, &mut b, |a, b| {
        a.set.is_empty()
            && b.up.seen.iter().any(|s| {
                matches!(
                    s,
                    Seen::Closed(
                        9,
                        CloseCause::Peer {
                            code: CloseCode::Normal,
                            ..
                        },
                        None
                    )
                )
            })
    });
    // The node asked for the close: it is not told again.
    assert!(!a.up.seen.iter().any(|s| matches!(s, Seen::Closed(..))));
    // Once b's side of the socket goes, the set is empty there too.
    run_until(&mut a, &mut b, |_, b| b.set.is_empty());
}

#[test]
fn a_dial_nobody_answers_is_a_failed_dial() {
    let mut a = Runtime::new(1);
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let now = a.clock.now();
    if let Err(e) = a.set.dial(now, 5, addr, None) {
        // Refused at once: the caller reports the failed dial itself, nothing is kept.
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert!(a.set.is_empty() && a.up.seen.is_empty());
        return;
    }
    for _ in 0..400 {
        if !a.up.seen.is_empty() {
            break;
        }
        a.turn();
    }
    assert_eq!(
        a.up.seen,
        vec![Seen::Closed(5, CloseCause::ConnectionLost, Some(addr))]
    );
    assert!(a.set.is_empty());
}

#[test]
fn a_peer_that_vanishes_is_a_lost_connection() {
    let (mut a, mut b) = (Runtime::new(1), Runtime::new(2));
    let (on_a, _) = connected_pair(&mut a, &mut b);
    drop(b);
    for _ in 0..400 {
        if a.up.seen.iter().any(|s| matches!(s, Seen::Closed(..))) {
            break;
        }
        a.turn();
    }
    assert_eq!(
        a.up.seen.last(),
        Some(&Seen::Closed(on_a, CloseCause::ConnectionLost, None))
    );
    assert!(a.set.is_empty());
}
