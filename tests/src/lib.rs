//! Shared helpers for the Starling integration tests live in `tests/`.
