//! stub
/// stub
#[derive(Debug, thiserror::Error)]
#[error("graph")]
pub struct GraphError;
