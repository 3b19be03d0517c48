//! The Noise parameters, a seeded randomness source for `snow`, and a node's handshake keys.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use snow::params::NoiseParams;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

use super::payload::static_key_binding;
use crate::identity::{Identity, SIGNATURE_LEN};

/// Noise XX over X25519, ChaCha20-Poly1305 and BLAKE2s: mutual authentication with both static
/// keys hidden from passive observers, and pure-Rust primitives.
pub(crate) const NOISE_PATTERN: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// Mixed into the handshake hash, so a handshake with any other protocol fails at once. The
/// version and network are deliberately *not* here: a mismatch there must be reported with a
/// readable reason, not as a failed MAC.
pub(crate) const PROLOGUE: &[u8] = b"starling session";

/// Largest Noise message (the spec's limit), and the AEAD tag it carries.
pub(crate) const MAX_NOISE_MESSAGE: usize = 65_535;
pub(crate) const TAG_LEN: usize = 16;

pub(crate) fn params() -> NoiseParams {
    // The pattern string is a constant that snow parses; a failure is a bug in this file.
    NOISE_PATTERN
        .parse()
        .expect("NOISE_PATTERN is a valid Noise protocol name")
}

/// ChaCha20 seeded by the caller: from the OS in a real node, from the run's seed in the
/// simulator, so that handshakes (ephemeral keys included) replay exactly.
struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// snow's default primitives with our randomness.
pub(crate) struct SeededResolver {
    seed: [u8; 32],
}

impl SeededResolver {
    pub(crate) fn boxed(seed: [u8; 32]) -> Box<dyn CryptoResolver + Send> {
        Box::new(SeededResolver { seed })
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(self.seed))))
    }
    fn resolve_dh(&self, choice: &snow::params::DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &snow::params::HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &snow::params::CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// A node's keys for sessions: its ed25519 identity, a Noise static X25519 keypair, and the
/// identity's signature over that static key. Built once per node and shared by its sessions,
/// so a handshake signs nothing.
#[derive(Clone)]
pub struct NodeKeys {
    identity: Identity,
    noise_private: [u8; 32],
    noise_public: [u8; 32],
    signature: [u8; SIGNATURE_LEN],
}

impl NodeKeys {
    /// Keys for `identity`, with a Noise static key drawn from a CSPRNG seeded by `seed`
    /// (fresh OS randomness for a real node).
    pub fn new(identity: Identity, seed: [u8; 32]) -> Self {
        let keypair = snow::Builder::with_resolver(params(), SeededResolver::boxed(seed))
            .generate_keypair()
            // X25519 keypair generation cannot fail with an infallible RNG.
            .expect("X25519 keypair generation");
        let mut noise_private = [0u8; 32];
        let mut noise_public = [0u8; 32];
        noise_private.copy_from_slice(&keypair.private);
        noise_public.copy_from_slice(&keypair.public);
        let signature = identity.sign(&static_key_binding(&noise_public));
        NodeKeys {
            identity,
            noise_private,
            noise_public,
            signature,
        }
    }

    /// Deterministic keys for tests and simulations (see [`Identity::from_test_seed`]).
    pub fn from_test_seed(seed: u64) -> Self {
        let identity = Identity::from_test_seed(seed);
        let noise_seed = *blake3::Hasher::new_derive_key("starling test noise key v1")
            .update(&seed.to_le_bytes())
            .finalize()
            .as_bytes();
        NodeKeys::new(identity, noise_seed)
    }

    /// The node's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub(crate) fn noise_private(&self) -> &[u8; 32] {
        &self.noise_private
    }

    /// The public Noise static key.
    pub fn noise_public(&self) -> &[u8; 32] {
        &self.noise_public
    }

    pub(crate) fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The same keys with a forged signature, to test that peers refuse it.
    #[cfg(test)]
    pub(crate) fn with_signature(mut self, signature: [u8; SIGNATURE_LEN]) -> Self {
        self.signature = signature;
        self
    }
}

impl core::fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeKeys")
            .field("peer_id", &self.identity.peer_id())
            .finish()
    }
}

/// Derives a 32-byte seed for a sub-use of a session's seed.
pub(crate) fn sub_seed(seed: &[u8; 32], purpose: &str) -> [u8; 32] {
    blake3::keyed_hash(seed, purpose.as_bytes()).into()
}

/// A fresh `u64` from a session seed, for the keep-alive detector's jitter.
pub(crate) fn u64_seed(seed: &[u8; 32]) -> u64 {
    ChaCha20Rng::from_seed(sub_seed(seed, "keepalive")).next_u64()
}
