//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files of
//! `migrations/` at compile time, but on stable Rust cargo is not told about a new file there
//! (sqlx's documentation of `migrate!` asks for this line).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
