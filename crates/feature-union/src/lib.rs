//! No code: see this crate's `Cargo.toml`. Depending on it makes a build ask shared crates
//! for the same features every other build of the workspace asks of them.
