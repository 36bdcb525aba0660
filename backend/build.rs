// `sqlx::migrate!` embeds the migration files at compile time; without this a new file
// under migrations/ would not trigger a rebuild and the binary would miss it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
