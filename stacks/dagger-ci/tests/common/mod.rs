//! Helpers shared by the flagship's in-process config tests: the shipped configs, edited.

/// The stack crate's directory.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The text of `config/<name>.toml`.
pub fn shipped(name: &str) -> String {
    std::fs::read_to_string(root().join(format!("config/{name}.toml"))).unwrap()
}

/// `text` with each `(from, to)` replaced once (each `from` must be there).
pub fn with(text: &str, edits: &[(&str, &str)]) -> String {
    let mut text = text.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "the config has {from:?}");
        text = text.replacen(from, to, 1);
    }
    text
}
