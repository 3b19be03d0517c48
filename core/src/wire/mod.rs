//! wire placeholder during bring-up
