//! Parse and evaluate a SCIM filter with `scim-core`.
fn main() {
    println!("scim-core example placeholder");
}
