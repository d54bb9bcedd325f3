//! llm (being written).
