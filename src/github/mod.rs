//! The GitHub boundary (being written).
pub mod types;
