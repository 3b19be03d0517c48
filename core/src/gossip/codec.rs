//! The wire encoding of gossip messages.
