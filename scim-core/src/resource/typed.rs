//! Typed views of the common resources for embedding applications.
//!
//! (placeholder: the resource helper fills this in)

/// A typed view of a User.
#[derive(Debug, Clone, Default)]
pub struct User;
/// A typed view of the enterprise extension.
#[derive(Debug, Clone, Default)]
pub struct EnterpriseUser;
/// A typed view of a Group.
#[derive(Debug, Clone, Default)]
pub struct Group;
/// A group member.
#[derive(Debug, Clone, Default)]
pub struct Member;
/// A user's name.
#[derive(Debug, Clone, Default)]
pub struct Name;
