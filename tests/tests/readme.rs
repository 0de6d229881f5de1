//! The README's drive loop is the code of the `smtp_proto::session`
//! doctests, which are compiled and run: this test keeps the two copies in
//! step, so the README cannot drift into code that does not build.

use std::path::Path;

/// The code blocks of `text`, each as its lines; `hidden` drops the lines
/// rustdoc hides (`# …`).
fn code_blocks(lines: impl Iterator<Item = String>, hidden: bool) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in lines {
        if line.trim_start().starts_with("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some(Vec::new()),
            }
            continue;
        }
        if let Some(block) = current.as_mut() {
            if hidden && (line == "#" || line.starts_with("# ")) {
                continue;
            }
            block.push(line);
        }
    }
    blocks
}

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn readme_drive_loop_is_the_session_doctest() {
    let module = read("../smtp-proto/src/session/mod.rs");
    let docs = module.lines().filter_map(|l| {
        l.strip_prefix("//! ")
            .or_else(|| l.strip_prefix("//!"))
            .map(str::to_owned)
    });
    let doctests = code_blocks(docs, true);
    assert_eq!(doctests.len(), 2, "a server and a client loop");

    let readme = read("../README.md");
    let section = readme
        .split("## The drive loop")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a drive loop section");
    let shown = code_blocks(section.lines().map(str::to_owned), false);
    assert_eq!(
        shown, doctests,
        "README.md's drive loop differs from the smtp_proto::session doctests"
    );
}
