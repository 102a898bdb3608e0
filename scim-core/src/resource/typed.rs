//! Typed views of the common resources for embedding applications.
//!
//! The engine itself works on [`Attributes`]; an application that embeds it and wants Rust
//! structs converts with `from_attributes` / `TryFrom<&Resource>` and back with
//! `into_attributes`. Attributes a struct does not model (addresses, roles, custom extensions)
//! are kept in its `other` map, so a round trip loses nothing. Secrets are never carried:
//! `password` is dropped on the way in.
//!
//! ```
//! use scim_core::resource::{User, Attributes};
//! use serde_json::json;
//!
//! let attrs: Attributes = json!({
//!     "userName": "bjensen",
//!     "name": {"givenName": "Barbara"},
//!     "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
//!     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "42"}},
//!     "addresses": [{"locality": "Hollywood"}]
//! }).as_object().unwrap().clone();
//! let user = User::from_attributes(&attrs).unwrap();
//! assert_eq!(user.user_name, "bjensen");
//! assert_eq!(user.enterprise.as_ref().unwrap().manager.as_deref(), Some("42"));
//! assert_eq!(user.into_attributes(), attrs);
//! ```

use super::{Attributes, Resource};
use crate::error::{Error, Result};
use crate::schema::{ENTERPRISE_USER_URN, GROUP_RESOURCE, USER_RESOURCE};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A typed view of a User (RFC 7643 §4.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The server-assigned id (from the [`Resource`]; not part of its attributes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The client's identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The unique sign-in name (required).
    pub user_name: String,
    /// The components of the user's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The casual name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick_name: Option<String>,
    /// The user's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The relationship to the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// The preferred language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_language: Option<String>,
    /// The locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The Olson time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The administrative status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Email addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<MultiValue>,
    /// Phone numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phone_numbers: Vec<MultiValue>,
    /// The Enterprise User extension (RFC 7643 §4.3).
    #[serde(
        default,
        rename = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        skip_serializing_if = "Option::is_none"
    )]
    pub enterprise: Option<EnterpriseUser>,
    /// Every other attribute, in wire form.
    #[serde(flatten)]
    pub other: Attributes,
}

/// A user's name (RFC 7643 §4.1.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Name {
    /// The full name, formatted for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// The family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// The given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// The middle name(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Honorific prefix(es).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_prefix: Option<String>,
    /// Honorific suffix(es).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_suffix: Option<String>,
    /// Other sub-attributes, as sent.
    #[serde(flatten)]
    pub other: Attributes,
}

/// One value of a multi-valued attribute such as `emails` (RFC 7643 §2.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MultiValue {
    /// The value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The label (`work`, `home`, …).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether this is the preferred value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// Other sub-attributes, as sent.
    #[serde(flatten)]
    pub other: Attributes,
}

/// A typed view of the Enterprise User extension (RFC 7643 §4.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnterpriseUser {
    /// The employee number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<String>,
    /// The cost center.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_center: Option<String>,
    /// The organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The division.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division: Option<String>,
    /// The department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The manager's id (`manager.value`). Read from a bare string or an object; written as
    /// `{"value": id}`, the only shape Entra accepts back (reference Q8). `$ref` and
    /// `displayName` are not kept.
    #[serde(default, with = "manager_id", skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    /// Other extension attributes, as sent.
    #[serde(flatten)]
    pub other: Attributes,
}

/// A typed view of a Group (RFC 7643 §4.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// The server-assigned id (from the [`Resource`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The client's identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The group's name (required).
    pub display_name: String,
    /// The members, when loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    /// Every other attribute, in wire form.
    #[serde(flatten)]
    pub other: Attributes,
}

/// A group member (RFC 7643 §4.2 `members`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's id.
    pub value: String,
    /// The member's URI.
    #[serde(default, rename = "$ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// `User` or `Group`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

mod manager_id {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::{Value, json};

    pub fn serialize<S: Serializer>(id: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        id.as_ref().map(|id| json!({ "value": id })).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Some(s),
            Value::Object(obj) => obj.get("value").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
    }
}

/// Keys that are not attributes or are never carried by a typed view.
const DROPPED: &[&str] = &["schemas", "meta", "password"];

fn from_map<T: DeserializeOwned>(attrs: &Attributes, what: &str) -> Result<T> {
    let mut attrs = attrs.clone();
    attrs.retain(|k, _| !DROPPED.iter().any(|d| d.eq_ignore_ascii_case(k)));
    if let Some(Value::Object(ext)) = attrs.get_mut(ENTERPRISE_USER_URN) {
        ext.retain(|_, v| !v.is_null());
    }
    serde_json::from_value(Value::Object(attrs))
        .map_err(|e| Error::invalid_value(format!("not a valid {what}: {e}")))
}

fn into_map<T: Serialize>(value: &T) -> Attributes {
    let Ok(Value::Object(mut out)) = serde_json::to_value(value) else {
        return Attributes::new();
    };
    out.remove("id");
    out.retain(|_, v| !v.as_object().is_some_and(|o| o.is_empty()));
    out
}

fn check_type(resource: &Resource, want: &str) -> Result<()> {
    if resource.resource_type.eq_ignore_ascii_case(want) {
        Ok(())
    } else {
        Err(Error::invalid_value(format!(
            "resource {} is a {}, not a {want}",
            resource.id, resource.resource_type
        )))
    }
}

impl User {
    /// Reads normalised attributes (canonical names; see [`crate::normalize`]).
    pub fn from_attributes(attrs: &Attributes) -> Result<Self> {
        let mut user: Self = from_map(attrs, "User")?;
        if user.enterprise.as_ref() == Some(&EnterpriseUser::default()) {
            user.enterprise = None;
        }
        Ok(user)
    }

    /// The attributes in wire form (without `id`, which the [`Resource`] holds).
    pub fn into_attributes(self) -> Attributes {
        into_map(&self)
    }
}

impl TryFrom<&Resource> for User {
    type Error = Error;
    fn try_from(resource: &Resource) -> Result<Self> {
        check_type(resource, USER_RESOURCE)?;
        let mut user = Self::from_attributes(&resource.attributes)?;
        user.id = Some(resource.id.clone());
        Ok(user)
    }
}

impl Group {
    /// Reads normalised attributes.
    pub fn from_attributes(attrs: &Attributes) -> Result<Self> {
        from_map(attrs, "Group")
    }

    /// The attributes in wire form (without `id`).
    pub fn into_attributes(self) -> Attributes {
        into_map(&self)
    }
}

impl TryFrom<&Resource> for Group {
    type Error = Error;
    fn try_from(resource: &Resource) -> Result<Self> {
        check_type(resource, GROUP_RESOURCE)?;
        let mut group = Self::from_attributes(&resource.attributes)?;
        group.id = Some(resource.id.clone());
        Ok(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Meta;
    use serde_json::json;

    fn attrs(v: Value) -> Attributes {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn user_round_trips_through_attributes() {
        let cases = [
            json!({"userName": "a"}),
            json!({
                "externalId": "e", "userName": "a", "name": {"givenName": "B", "familyName": "J", "x": 1},
                "displayName": "B J", "nickName": "bj", "title": "VP", "userType": "Employee",
                "preferredLanguage": "en", "locale": "en-US", "timezone": "Europe/Paris", "active": false,
                "emails": [{"value": "a@b", "type": "work", "primary": true, "display": "A"}],
                "phoneNumbers": [{"value": "555", "type": "mobile", "extra": "kept"}],
                ENTERPRISE_USER_URN: {"employeeNumber": "701984", "costCenter": "4130", "organization": "O",
                    "division": "D", "department": "Tour", "manager": {"value": "89607"}, "custom": true},
                "roles": [{"value": "Admin"}],
                "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User": {"tag": "701984"}
            }),
        ];
        for case in cases {
            let user = User::from_attributes(&attrs(case.clone())).unwrap();
            assert_eq!(Value::Object(user.into_attributes()), case);
        }
    }

    #[test]
    fn user_views() {
        let r = Resource::new(
            "User",
            "u1",
            attrs(
                json!({"userName": "a", "password": "secret", "active": true,
                         ENTERPRISE_USER_URN: {"manager": "m1"}}),
            ),
            Meta::new(time::OffsetDateTime::UNIX_EPOCH),
        );
        let user = User::try_from(&r).unwrap();
        assert_eq!(user.id.as_deref(), Some("u1"));
        assert_eq!(user.active, Some(true));
        assert_eq!(
            user.enterprise.as_ref().unwrap().manager.as_deref(),
            Some("m1")
        );
        let out = user.into_attributes();
        assert!(out.get("password").is_none() && out.get("id").is_none());
        assert_eq!(
            out[ENTERPRISE_USER_URN],
            json!({"manager": {"value": "m1"}})
        );
        // Wrong type, missing userName.
        let group = Resource::new("Group", "g", Attributes::new(), r.meta.clone());
        assert!(
            User::try_from(&group)
                .unwrap_err()
                .detail()
                .contains("not a User")
        );
        let err = User::from_attributes(&attrs(json!({"active": true}))).unwrap_err();
        assert!(err.detail().contains("userName"), "{err}");
        // An empty enterprise object is no extension.
        let u = User::from_attributes(&attrs(json!({"userName": "a", ENTERPRISE_USER_URN: {}})))
            .unwrap();
        assert!(u.enterprise.is_none());
        // A typed value built in code.
        let built = User {
            user_name: "new".into(),
            name: Some(Name {
                given_name: Some("N".into()),
                ..Name::default()
            }),
            ..User::default()
        };
        assert_eq!(
            Value::Object(built.into_attributes()),
            json!({"userName": "new", "name": {"givenName": "N"}})
        );
    }

    #[test]
    fn group_round_trips() {
        let case = json!({"externalId": "x", "displayName": "Sales",
            "members": [{"value": "u1", "$ref": "https://x/Users/u1", "type": "User", "display": "A"}, {"value": "u2"}]});
        let r = Resource::new(
            "Group",
            "g1",
            attrs(case.clone()),
            Meta::new(time::OffsetDateTime::UNIX_EPOCH),
        );
        let group = Group::try_from(&r).unwrap();
        assert_eq!(group.id.as_deref(), Some("g1"));
        assert_eq!(
            group.members[0].reference.as_deref(),
            Some("https://x/Users/u1")
        );
        assert_eq!(
            group.members[1],
            Member {
                value: "u2".into(),
                ..Member::default()
            }
        );
        assert_eq!(Value::Object(group.into_attributes()), case);
        let err = Group::from_attributes(&attrs(json!({"members": []}))).unwrap_err();
        assert!(err.detail().contains("displayName"), "{err}");
    }
}
