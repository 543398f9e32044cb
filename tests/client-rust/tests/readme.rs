//! The README's client snippets are the very files the client tests run.

use std::{fs, path::Path};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Every snippet the README must show, by the file that a test runs.
const SNIPPETS: &[&str] = &[
    "tests/client-rust/tests/snippet/mod.rs",
    "tests/contract/python/snippet.py",
    "tests/contract/python-generator/snippet.py",
    "tests/contract/typescript/snippet.ts",
    "tests/contract/resource_server/verify_with_jwks.py",
    "tests/api/jwks_snippet.rs",
];

/// The fenced block after each `<!-- snippet: PATH -->` line, as (PATH, block text).
fn readme_snippets(readme: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .trim()
            .strip_prefix("<!-- snippet: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "README: a fenced block must follow the snippet marker of {path}"
        );
        let mut block = String::new();
        for code in lines.by_ref() {
            if code == "```" {
                break;
            }
            block.push_str(code);
            block.push('\n');
        }
        found.push((path.to_owned(), block));
    }
    found
}

#[test]
fn readme_client_snippets_are_the_files_the_tests_run() {
    let readme = fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let snippets = readme_snippets(&readme);

    let shown: Vec<&str> = snippets.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        shown, SNIPPETS,
        "README shows one snippet per client and per resource server, in this order"
    );
    for (path, block) in &snippets {
        let file = fs::read_to_string(Path::new(ROOT).join(path)).expect("snippet file");
        assert!(
            *block == file,
            "README's snippet of {path} differs from the file: copy the file into the README"
        );
    }
}

#[test]
fn a_snippet_that_differs_from_its_file_is_found() {
    let readme = "text\n<!-- snippet: a.py -->\n```python\nprint(1)\n```\nmore\n";
    assert_eq!(
        readme_snippets(readme),
        vec![("a.py".to_owned(), "print(1)\n".to_owned())]
    );
}
