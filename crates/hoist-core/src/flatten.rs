//! Placeholder: the streaming flattener is being written.
/// Placeholder error.
#[derive(Debug, thiserror::Error)]
#[error("flatten")]
pub struct FlattenError;
