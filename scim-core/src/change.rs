//! Change descriptions: what every accepted write did, the input of the outbox, the audit log and
//! the Graph bridge.
//!
//! (the query helper implements this module)
