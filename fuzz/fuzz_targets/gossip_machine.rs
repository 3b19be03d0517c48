//! Drives a gossip node with an arbitrary mix of membership, broadcast and anti-entropy
//! messages from up to 16 peers, timeouts, publishes, subscriptions and failure reports, and
//! checks what it promises: no panic, nothing sent to itself, bounded views, each message
//! delivered at most once, bounded history, and a bounded amount of output per input.
#![no_main]

use std::collections::HashSet;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use starling_core::gossip::{
    Announcement, BroadcastMode, BucketDigest, Gossip, GossipConfig, GossipEvent, GossipMessage,
    MessageId, Payload, TopicId,
};
use starling_core::machine::{Machine, Output};
use starling_core::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
enum Msg {
    Join,
    ForwardJoin {
        joiner: u8,
        ttl: u8,
    },
    Neighbor(bool),
    NeighborReply(bool),
    Disconnect,
    Shuffle {
        origin: u8,
        ttl: u8,
        peers: Vec<u8>,
    },
    ShuffleReply(Vec<u8>),
    Topics(Vec<u8>),
    Gossip {
        topic: u8,
        age_ms: u32,
        hops: u16,
        data: Vec<u8>,
    },
    /// Announces message `n` of the ones seen so far (or a made-up id).
    IHave {
        topic: u8,
        pick: Vec<u8>,
        hops: u16,
    },
    Graft {
        topic: u8,
        pick: Vec<u8>,
    },
    Prune(u8),
    Digest {
        topic: u8,
        back: u8,
        buckets: Vec<(u8, u8)>,
    },
    BucketIds {
        topic: u8,
        back: u8,
        pick: Vec<u8>,
        reply: bool,
    },
    Pull {
        topic: u8,
        pick: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
enum Input {
    Message { from: u8, msg: Msg },
    Timeout,
    Advance(u16),
    Join(u8),
    Failed(u8),
    Publish { topic: u8, data: Vec<u8> },
    Subscribe(u8),
    Unsubscribe(u8),
}

#[derive(Arbitrary, Debug)]
struct Run {
    seed: u64,
    push: bool,
    inputs: Vec<Input>,
}

fn topic(t: u8) -> TopicId {
    TopicId(u64::from(t % 3))
}

fn peers(ids: Vec<u8>) -> Vec<u8> {
    ids.into_iter().take(40).map(|b| b % 16).collect()
}

fn pick(known: &[MessageId], picks: Vec<u8>) -> Vec<MessageId> {
    picks
        .into_iter()
        .take(40)
        .map(|p| match known.get(usize::from(p)) {
            Some(id) => *id,
            None => MessageId([p; 16]),
        })
        .collect()
}

fuzz_target!(|run: Run| {
    let mut config = GossipConfig::default();
    config.max_history = 64;
    config.max_history_bytes = 4096;
    config.max_missing = 16;
    config.membership.passive_size = 8;
    let mode = match run.push {
        true => BroadcastMode::Push { fanout: 3 },
        false => BroadcastMode::Plumtree,
    };
    let me = 0u8;
    // Start late enough that "history ago" is a real time.
    let mut now = Instant::ZERO + Duration::from_secs(1000);
    let Ok(mut g) = Gossip::new(config, mode, me, run.seed, now) else {
        return;
    };
    let _ = g.subscribe(topic(0));
    let mut known: Vec<MessageId> = Vec::new();
    let mut delivered: HashSet<MessageId> = HashSet::new();
    for input in run.inputs.into_iter().take(400) {
        let now_ms = now.as_nanos() / 1_000_000;
        match input {
            Input::Message { from, msg } => {
                let from = from % 16;
                let msg = match msg {
                    Msg::Join => GossipMessage::Join,
                    Msg::ForwardJoin { joiner, ttl } => GossipMessage::ForwardJoin {
                        joiner: joiner % 16,
                        ttl,
                    },
                    Msg::Neighbor(high_priority) => GossipMessage::Neighbor { high_priority },
                    Msg::NeighborReply(accepted) => GossipMessage::NeighborReply { accepted },
                    Msg::Disconnect => GossipMessage::Disconnect,
                    Msg::Shuffle {
                        origin,
                        ttl,
                        peers: p,
                    } => GossipMessage::Shuffle {
                        origin: origin % 16,
                        ttl,
                        peers: peers(p),
                    },
                    Msg::ShuffleReply(p) => GossipMessage::ShuffleReply { peers: peers(p) },
                    Msg::Topics(t) => GossipMessage::Topics {
                        topics: t.into_iter().take(8).map(topic).collect(),
                    },
                    Msg::Gossip {
                        topic: t,
                        age_ms,
                        hops,
                        data,
                    } => {
                        let payload = Payload {
                            topic: topic(t),
                            published_ms: now_ms.saturating_sub(u64::from(age_ms)),
                            hops,
                            data: Bytes::from(data),
                        };
                        known.push(payload.id());
                        GossipMessage::Gossip(Box::new(payload))
                    }
                    Msg::IHave {
                        topic: t,
                        pick: p,
                        hops,
                    } => GossipMessage::IHave {
                        topic: topic(t),
                        entries: pick(&known, p)
                            .into_iter()
                            .map(|id| Announcement { id, hops })
                            .collect(),
                    },
                    Msg::Graft { topic: t, pick: p } => GossipMessage::Graft {
                        topic: topic(t),
                        ids: pick(&known, p),
                    },
                    Msg::Prune(t) => GossipMessage::Prune { topic: topic(t) },
                    Msg::Digest {
                        topic: t,
                        back,
                        buckets,
                    } => GossipMessage::Digest {
                        topic: topic(t),
                        first_bucket: (now_ms / 1000).saturating_sub(u64::from(back)),
                        buckets: buckets
                            .into_iter()
                            .take(200)
                            .map(|(c, x)| BucketDigest {
                                count: u32::from(c),
                                xor: MessageId([x; 16]),
                            })
                            .collect(),
                    },
                    Msg::BucketIds {
                        topic: t,
                        back,
                        pick: p,
                        reply,
                    } => GossipMessage::BucketIds {
                        topic: topic(t),
                        bucket: (now_ms / 1000).saturating_sub(u64::from(back)),
                        ids: pick(&known, p),
                        want_reply: reply,
                    },
                    Msg::Pull { topic: t, pick: p } => GossipMessage::Pull {
                        topic: topic(t),
                        ids: pick(&known, p),
                    },
                };
                g.handle_message(now, from, msg);
            }
            Input::Timeout => {
                if let Some(t) = g.poll_timeout() {
                    now = now.max(t);
                }
                g.handle_timeout(now);
            }
            Input::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
            Input::Join(p) => g.join(now, p % 16),
            Input::Failed(p) => g.peer_failed(now, p % 16),
            Input::Publish { topic: t, data } => {
                if let Ok(id) = g.publish(now, topic(t), Bytes::from(data)) {
                    known.push(id);
                    assert!(delivered.insert(id), "published a delivered message");
                }
            }
            Input::Subscribe(t) => {
                let _ = g.subscribe(topic(t));
            }
            Input::Unsubscribe(t) => g.unsubscribe(topic(t)),
        }
        if known.len() > 256 {
            known.drain(..128);
        }
        let mut outputs = 0;
        while let Some(out) = g.poll_output() {
            outputs += 1;
            match out {
                Output::Send { to, msg } => assert_ne!(to, me, "sent {msg:?} to itself"),
                Output::Event(GossipEvent::Message { id, .. }) => {
                    // Ids stay remembered for the whole history window, longer than a run.
                    assert!(delivered.insert(id), "message {id:?} delivered twice");
                }
                Output::Event(_) => {}
            }
        }
        // One input: up to 40 pulled ids, or a digest's buckets, or a broadcast to the views.
        assert!(outputs <= 512, "{outputs} outputs from one input");
        assert!(g.active().len() <= 6 && g.passive().len() <= 8);
        assert!(!g.active().contains(&me) && !g.passive().contains(&me));
        assert!(g.history_len() <= 64);
    }
});
