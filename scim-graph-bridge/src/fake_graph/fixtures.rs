//! The demo tenant the bridge's tests, the server's bridge tests and the example share: a
//! catalog seeded in a [`FakeGraph`] and the rules file that names it.

use super::FakeGraph;

/// The role definition id of Helpdesk Administrator (a built-in Entra role).
pub const HELPDESK_ROLE: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

/// The Graph objects of the demo tenant, by their Graph ids.
#[derive(Clone, Debug)]
pub struct DemoCatalog {
    /// Group `all-staff` (everyone, by `[defaults]`).
    pub all_staff: String,
    /// Group `eng` (department Engineering).
    pub eng: String,
    /// Group `support` (support staff in IT or Service Desk).
    pub support: String,
    /// A group outside the rules' catalog: the bridge must never touch it.
    pub manual: String,
    /// SKU `SPE_E5` (catalog name `e5`).
    pub e5: String,
    /// SKU `ENTERPRISEPACK` (catalog name `e3`).
    pub e3: String,
}

impl DemoCatalog {
    /// Seeds the groups and SKUs (each with `seats` units) in `fake`.
    pub fn seed(fake: &FakeGraph, seats: u32) -> Self {
        fake.with_directory(|d| Self {
            all_staff: d.add_group("all-staff"),
            eng: d.add_group("eng"),
            support: d.add_group("support"),
            manual: d.add_group("manual"),
            e5: d.add_sku("SPE_E5", seats),
            e3: d.add_sku("ENTERPRISEPACK", seats),
        })
    }

    /// The rules file: match on `userName` = `userPrincipalName`; creation when `create`
    /// (usage location US); everyone in `all-staff`; Engineering in `eng` with
    /// `engineering_license`; support staff (department IT or Service Desk, title starting
    /// with "Support") in `support` with `e3` and Helpdesk Administrator. `extra` is appended.
    pub fn rules_toml(&self, create: bool, engineering_license: &str, extra: &str) -> String {
        format!(
            r#"
[match]
scim = "userName"
graph = "userPrincipalName"
[create]
enabled = {create}
usage_location = "US"
[catalog.groups]
all-staff = "{all}"
eng = "{eng}"
support = "{support}"
[catalog.licenses]
e5 = {{ sku_id = "{e5}" }}
e3 = {{ sku_id = "{e3}" }}
[catalog.roles]
helpdesk = {{ role_definition_id = "{HELPDESK_ROLE}", directory_scope_id = "/" }}
[defaults]
groups = ["all-staff"]
[[rule]]
name = "engineering"
when = {{ department = "Engineering" }}
groups = ["eng"]
licenses = ["{engineering_license}"]
[[rule]]
name = "support"
when = {{ department = {{ in = ["IT", "Service Desk"] }}, title = {{ starts_with = "Support" }} }}
groups = ["support"]
licenses = ["e3"]
roles = ["helpdesk"]
{extra}
"#,
            all = self.all_staff,
            eng = self.eng,
            support = self.support,
            e5 = self.e5,
            e3 = self.e3,
        )
    }
}
