//! Settings (being written).
