//! The RFC 7643 §4 and §8.7 schema documents, built with a small builder so each attribute's
//! characteristics read on one line.

use super::{
    AttributeDef, AttributeType as T, ENTERPRISE_USER_URN, GROUP_URN, Mutability, Returned, Schema,
    USER_URN, Uniqueness,
};

fn attr(name: &str, kind: T, description: &str) -> AttributeDef {
    let mut a = AttributeDef::new(name, kind);
    a.description = description.into();
    a
}

trait Builder {
    fn multi(self) -> Self;
    fn required(self) -> Self;
    fn case_exact(self) -> Self;
    fn mutability(self, m: Mutability) -> Self;
    fn returned(self, r: Returned) -> Self;
    fn unique(self) -> Self;
    fn canonical(self, values: &[&str]) -> Self;
    fn refs(self, types: &[&str]) -> Self;
    fn subs(self, subs: Vec<AttributeDef>) -> Self;
}

impl Builder for AttributeDef {
    fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
    fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    fn unique(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }
    fn canonical(mut self, values: &[&str]) -> Self {
        self.canonical_values = values.iter().map(|s| s.to_string()).collect();
        self
    }
    fn refs(mut self, types: &[&str]) -> Self {
        self.reference_types = types.iter().map(|s| s.to_string()).collect();
        self
    }
    fn subs(mut self, subs: Vec<AttributeDef>) -> Self {
        self.sub_attributes = subs;
        self
    }
}

/// The sub-attributes shared by the RFC 7643 §2.4 multi-valued attributes (`value`, `display`,
/// `type`, `primary`), with the canonical `type` values of the attribute.
fn multi_valued(name: &str, description: &str, value_kind: T, types: &[&str]) -> AttributeDef {
    let mut value = attr("value", value_kind, &format!("The value of {name}."));
    if value_kind == T::Reference {
        value = value.refs(&["external"]);
    }
    attr(name, T::Complex, description).multi().subs(vec![
        value,
        attr(
            "display",
            T::String,
            "A human-readable name, primarily used for display purposes.",
        ),
        attr(
            "type",
            T::String,
            "A label indicating the attribute's function.",
        )
        .canonical(types),
        attr(
            "primary",
            T::Boolean,
            "Indicates the 'primary' or preferred attribute value.",
        ),
    ])
}

pub(super) fn common_attributes() -> Vec<AttributeDef> {
    use Mutability::ReadOnly;
    vec![
        attr(
            "id",
            T::String,
            "Unique identifier for the resource, assigned by the service provider.",
        )
        .case_exact()
        .mutability(ReadOnly)
        .returned(Returned::Always)
        .unique(),
        attr(
            "externalId",
            T::String,
            "Identifier for the resource as defined by the provisioning client.",
        )
        .case_exact(),
        attr("meta", T::Complex, "Resource metadata.")
            .mutability(ReadOnly)
            .subs(vec![
                attr("resourceType", T::String, "The name of the resource type.")
                    .case_exact()
                    .mutability(ReadOnly),
                attr("created", T::DateTime, "When the resource was added.").mutability(ReadOnly),
                attr(
                    "lastModified",
                    T::DateTime,
                    "When the resource was last modified.",
                )
                .mutability(ReadOnly),
                attr("location", T::Reference, "The URI of the resource.")
                    .case_exact()
                    .mutability(ReadOnly),
                attr("version", T::String, "The version (ETag) of the resource.")
                    .case_exact()
                    .mutability(ReadOnly),
            ]),
    ]
}

/// The core User schema (RFC 7643 §4.1, §8.7.1).
pub fn user_schema() -> Schema {
    use Mutability::*;
    Schema {
        id: USER_URN.into(),
        name: "User".into(),
        description: "User Account".into(),
        attributes: vec![
            attr(
                "userName",
                T::String,
                "Unique identifier for the User, typically used to authenticate.",
            )
            .required()
            .unique(),
            attr(
                "name",
                T::Complex,
                "The components of the user's real name.",
            )
            .subs(vec![
                attr(
                    "formatted",
                    T::String,
                    "The full name, formatted for display.",
                ),
                attr("familyName", T::String, "The family name of the User."),
                attr("givenName", T::String, "The given name of the User."),
                attr("middleName", T::String, "The middle name(s) of the User."),
                attr(
                    "honorificPrefix",
                    T::String,
                    "The honorific prefix(es) of the User.",
                ),
                attr(
                    "honorificSuffix",
                    T::String,
                    "The honorific suffix(es) of the User.",
                ),
            ]),
            attr(
                "displayName",
                T::String,
                "The name of the User, suitable for display to end-users.",
            ),
            attr("nickName", T::String, "The casual way to address the user."),
            attr(
                "profileUrl",
                T::Reference,
                "A fully qualified URL pointing to the User's online profile.",
            )
            .refs(&["external"]),
            attr(
                "title",
                T::String,
                "The user's title, such as \"Vice President\".",
            ),
            attr(
                "userType",
                T::String,
                "The relationship between the organization and the user.",
            ),
            attr(
                "preferredLanguage",
                T::String,
                "The User's preferred written or spoken language.",
            ),
            attr(
                "locale",
                T::String,
                "The User's default location for localization.",
            ),
            attr(
                "timezone",
                T::String,
                "The User's time zone in the 'Olson' time zone database format.",
            ),
            attr("active", T::Boolean, "The User's administrative status."),
            attr(
                "password",
                T::String,
                "The User's cleartext password; never returned.",
            )
            .mutability(WriteOnly)
            .returned(Returned::Never),
            multi_valued(
                "emails",
                "Email addresses for the user.",
                T::String,
                &["work", "home", "other"],
            ),
            multi_valued(
                "phoneNumbers",
                "Phone numbers for the User.",
                T::String,
                &["work", "home", "mobile", "fax", "pager", "other"],
            ),
            multi_valued(
                "ims",
                "Instant messaging addresses for the User.",
                T::String,
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
            ),
            multi_valued(
                "photos",
                "URLs of photos of the User.",
                T::Reference,
                &["photo", "thumbnail"],
            ),
            attr(
                "addresses",
                T::Complex,
                "A physical mailing address for this User.",
            )
            .multi()
            .subs(vec![
                attr(
                    "formatted",
                    T::String,
                    "The full mailing address, formatted for display.",
                ),
                attr(
                    "streetAddress",
                    T::String,
                    "The full street address component.",
                ),
                attr("locality", T::String, "The city or locality component."),
                attr("region", T::String, "The state or region component."),
                attr(
                    "postalCode",
                    T::String,
                    "The zip code or postal code component.",
                ),
                attr("country", T::String, "The country name component."),
                attr(
                    "type",
                    T::String,
                    "A label indicating the attribute's function.",
                )
                .canonical(&["work", "home", "other"]),
                attr(
                    "primary",
                    T::Boolean,
                    "Indicates the primary mailing address.",
                ),
            ]),
            attr(
                "groups",
                T::Complex,
                "Groups the user belongs to, direct or indirect.",
            )
            .multi()
            .mutability(ReadOnly)
            .subs(vec![
                attr("value", T::String, "The identifier of the User's group.")
                    .mutability(ReadOnly),
                attr(
                    "$ref",
                    T::Reference,
                    "The URI of the corresponding Group resource.",
                )
                .refs(&["User", "Group"])
                .mutability(ReadOnly),
                attr("display", T::String, "A human-readable name.").mutability(ReadOnly),
                attr("type", T::String, "How the membership was derived.")
                    .canonical(&["direct", "indirect"])
                    .mutability(ReadOnly),
            ]),
            multi_valued(
                "entitlements",
                "A list of entitlements for the User.",
                T::String,
                &[],
            ),
            multi_valued("roles", "A list of roles for the User.", T::String, &[]),
            multi_valued(
                "x509Certificates",
                "A list of certificates issued to the User.",
                T::Binary,
                &[],
            ),
        ],
    }
}

/// The core Group schema (RFC 7643 §4.2, §8.7.1).
///
/// `displayName` is declared `uniqueness: server`: RFC 7643 leaves it non-unique, but Microsoft
/// Entra ID matches groups by it and requires the target to keep it unique.
pub fn group_schema() -> Schema {
    Schema {
        id: GROUP_URN.into(),
        name: "Group".into(),
        description: "Group".into(),
        attributes: vec![
            attr(
                "displayName",
                T::String,
                "A human-readable name for the Group.",
            )
            .required()
            .unique(),
            attr("members", T::Complex, "A list of members of the Group.")
                .multi()
                .subs(vec![
                    attr(
                        "value",
                        T::String,
                        "Identifier of the member of this Group.",
                    )
                    .case_exact()
                    .mutability(Mutability::Immutable),
                    attr("$ref", T::Reference, "The URI of the member resource.")
                        .refs(&["User", "Group"])
                        .mutability(Mutability::Immutable),
                    // Served on request only (`attributes=members.display`): the server
                    // derives it from the member, so echoing it by default makes a member list
                    // read back differ from the one written, which validators (scim2-tester's
                    // PATCH checks) treat as a failed write. RFC 7643 §8.7.1 lists only
                    // `value`, `$ref` and `type` for members.
                    attr(
                        "display",
                        T::String,
                        "A human-readable name for the member.",
                    )
                    .mutability(Mutability::ReadOnly)
                    .returned(Returned::Request),
                    attr("type", T::String, "The type of the member.")
                        .canonical(&["User", "Group"])
                        .mutability(Mutability::Immutable),
                ]),
        ],
    }
}

/// The Enterprise User extension (RFC 7643 §4.3, §8.7.1).
pub fn enterprise_user_schema() -> Schema {
    Schema {
        id: ENTERPRISE_USER_URN.into(),
        name: "EnterpriseUser".into(),
        description: "Enterprise User".into(),
        attributes: vec![
            attr(
                "employeeNumber",
                T::String,
                "Numeric or alphanumeric identifier assigned to a person.",
            ),
            attr(
                "costCenter",
                T::String,
                "Identifies the name of a cost center.",
            ),
            attr(
                "organization",
                T::String,
                "Identifies the name of an organization.",
            ),
            attr("division", T::String, "Identifies the name of a division."),
            attr(
                "department",
                T::String,
                "Identifies the name of a department.",
            ),
            attr("manager", T::Complex, "The User's manager.").subs(vec![
                attr(
                    "value",
                    T::String,
                    "The id of the SCIM resource representing the User's manager.",
                )
                .case_exact(),
                attr(
                    "$ref",
                    T::Reference,
                    "The URI of the SCIM resource representing the User's manager.",
                )
                .refs(&["User"]),
                attr(
                    "displayName",
                    T::String,
                    "The displayName of the User's manager.",
                )
                .mutability(Mutability::ReadOnly),
            ]),
        ],
    }
}
