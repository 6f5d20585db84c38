//! The committed generated code must equal what the generator produces from the models.

#[test]
fn generated_code_is_fresh() {
    let root = xtask::workspace_root();
    let files = xtask::generate_all(&root).expect("generator runs");
    assert_eq!(files.len(), 2);
    for (path, expected) in files {
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == expected,
            "generated code is stale: run `cargo run -p xtask -- codegen` ({} differs)",
            path.display()
        );
    }
}
