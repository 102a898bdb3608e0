//! Bulk (RFC 7644 §3.7): request and response types, `bulkId` references, cycle detection,
//! `failOnErrors`.
//!
//! (the query helper implements this module)
