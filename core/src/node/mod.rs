//! Node (being written).
