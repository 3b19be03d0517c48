//! Decodes arbitrary bytes as everything the KV service reads from others: a client request, a
//! server response, a logged command and a state-machine snapshot (a leader sends those). None
//! may panic; whatever decodes must re-encode to exactly the input (the formats are canonical).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use starling_kv::proto::{Request, Response};
use starling_kv::state::{Command, KvState};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(r) = Request::decode(bytes.clone()) {
        assert_eq!(r.encode(), bytes);
    }
    if let Ok(r) = Response::decode(bytes.clone()) {
        assert_eq!(r.encode(), bytes);
    }
    if let Ok(c) = Command::decode(bytes.clone()) {
        assert_eq!(c.encode(), bytes);
    }
    if let Ok(state) = KvState::restore(bytes.clone()) {
        assert_eq!(
            KvState::restore(state.snapshot())
                .ok()
                .map(|s| s.snapshot()),
            Some(state.snapshot())
        );
    }
});
