//! The repository's Markdown files (README.md, CONTRIBUTING.md, docs/, bench/...). Each
//! fact has one home, so these tests check that home: every setting in
//! docs/configuration.md, every relative link and `#anchor` resolving, and every compiled
//! or tested example equal to its file, through one snippet checker.
//!
//! A snippet is a marker line followed by a fenced block:
//! - `<!-- snippet: PATH -->`: the block is the whole file PATH, byte for byte;
//! - `<!-- excerpt: PATH -->`: every line of the block that is not a `//` comment is a
//!   line of PATH (for a few lines shown out of a longer file).

use std::{
    collections::{BTreeSet, HashMap},
    fs,
    path::{Path, PathBuf},
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every example the documentation shows, as (Markdown file, the file a test compiles or
/// runs). A snippet that moves to another page moves here with it.
const SHOWN: &[(&str, &str)] = &[
    ("docs/architecture.md", "src/accounts/scopes.rs"),
    ("docs/architecture.md", "src/api/reports.rs"),
    ("docs/clients.md", "tests/client-rust/tests/snippet/mod.rs"),
    (
        "docs/clients.md",
        "tests/contract/python-generator/snippet.py",
    ),
    ("docs/clients.md", "tests/contract/python/snippet.py"),
    ("docs/clients.md", "tests/contract/typescript/snippet.ts"),
    ("docs/resource-servers.md", "tests/api/jwks_snippet.rs"),
    (
        "docs/resource-servers.md",
        "tests/contract/resource_server/verify_with_jwks.py",
    ),
];

/// Every Markdown file of the repository (outside `target/`, `node_modules/` and hidden
/// directories), as (path relative to the root, text), sorted by path.
fn markdown_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                    walk(&path, found);
                }
            } else if name.ends_with(".md") {
                found.push(path);
            }
        }
    }
    let root = Path::new(ROOT);
    let mut found = Vec::new();
    walk(root, &mut found);
    let mut files: Vec<_> = found
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let relative = path.strip_prefix(root).unwrap().to_string_lossy();
            (relative.replace('\\', "/"), text)
        })
        .collect();
    files.sort();
    files
}

/// The lines of `text` outside fenced code blocks, with their line numbers (from 1).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut prose = Vec::new();
    let mut fence: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &fence {
            Some(open) => {
                if trimmed.trim_end().starts_with(open.as_str())
                    && trimmed.trim_end().chars().all(|c| c == '`' || c == '~')
                {
                    fence = None;
                }
            }
            None => {
                let marker: String = trimmed
                    .chars()
                    .take_while(|&c| c == '`' || c == '~')
                    .collect();
                if marker.len() >= 3 {
                    fence = Some(marker);
                } else {
                    prose.push((i + 1, line));
                }
            }
        }
    }
    prose
}

/// `line` without its inline code spans (`` `...` ``, ``` ``...`` ```).
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        let closer = "`".repeat(ticks);
        match after.find(&closer) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                // An unclosed run of backticks is text.
                out.push_str(&closer);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation dropped (letters,
/// digits, `-` and `_` kept); a link's text stands for the link.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](target)` → `text`.
    while let Some(start) = rest.find("](") {
        text.push_str(&rest[..start]);
        rest = rest[start..].split_once(')').map_or("", |(_, after)| after);
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings, as GitHub makes them (a repeated heading
/// gets `-1`, `-2`, ...).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut found = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let heading = line[hashes..].trim().trim_end_matches('#');
        let base = slug(heading);
        let n = seen.entry(base.clone()).or_insert(0);
        found.insert(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    found
}

/// The targets of the inline links and images of `text`, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        let line = without_code_spans(line);
        for rest in line.split("](").skip(1) {
            let target = rest.split(')').next().unwrap_or_default();
            // `(<path with spaces>)`, else the path before a title (`(path "title")`).
            let target = match target.strip_prefix('<') {
                Some(inner) => inner.split('>').next(),
                None => target.split(' ').next(),
            };
            found.push((number, target.unwrap_or_default().to_owned()));
        }
    }
    found
}

#[derive(Debug, PartialEq, Eq)]
enum Shows {
    /// `<!-- snippet: PATH -->`: the whole file.
    File,
    /// `<!-- excerpt: PATH -->`: some of its lines.
    Lines,
}

/// A fenced block that shows a file: the marker's line number, what it shows of which
/// file, and the block's text (its lines without the fence's indentation).
#[derive(Debug, PartialEq, Eq)]
struct Snippet {
    line: usize,
    shows: Shows,
    path: String,
    block: String,
}

/// The snippets of `text`; an error for a marker without a fenced block after it.
fn snippets(text: &str) -> Result<Vec<Snippet>, String> {
    let mut found = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let marker = line.trim();
        let Some((shows, path)) = [
            ("<!-- snippet: ", Shows::File),
            ("<!-- excerpt: ", Shows::Lines),
        ]
        .into_iter()
        .find_map(|(prefix, shows)| {
            let path = marker.strip_prefix(prefix)?.strip_suffix(" -->")?;
            Some((shows, path.trim().to_owned()))
        }) else {
            continue;
        };
        let fence = lines.next().map(|(_, fence)| fence).unwrap_or_default();
        let indent = fence.len() - fence.trim_start().len();
        let ticks = fence.trim_start().chars().take_while(|&c| c == '`').count();
        if ticks < 3 {
            return Err(format!(
                "line {}: a fenced block must follow the marker of {path}",
                i + 1
            ));
        }
        let mut block = String::new();
        let mut closed = false;
        for (_, code) in lines.by_ref() {
            let trimmed = code.trim();
            if trimmed.len() >= ticks && trimmed.chars().all(|c| c == '`') {
                closed = true;
                break;
            }
            block.push_str(code.get(indent..).unwrap_or(code.trim_start()));
            block.push('\n');
        }
        if !closed {
            return Err(format!(
                "line {}: the block of {path} is never closed",
                i + 1
            ));
        }
        found.push(Snippet {
            line: i + 1,
            shows,
            path,
            block,
        });
    }
    Ok(found)
}

/// Why `snippet` does not show `file` as its marker says; `None` when it does.
fn mismatch(snippet: &Snippet, file: &str) -> Option<String> {
    match snippet.shows {
        Shows::File => (snippet.block != file)
            .then(|| "differs from the file: copy the file into the block".to_owned()),
        Shows::Lines => {
            let lines: BTreeSet<&str> = file.lines().collect();
            snippet
                .block
                .lines()
                .find(|line| !line.trim_start().starts_with("//") && !lines.contains(line))
                .map(|line| format!("shows a line the file does not have: {line:?}"))
        }
    }
}

#[test]
fn documentation_mentions_nothing_outside_the_repository() {
    // Where the contract lived before the repository carried it (spelt in parts so that
    // this file does not name them either).
    let outside = [
        concat!("..", "/shared"),
        concat!("SPEC", ".md"),
        concat!("STYLE", ".md"),
    ];
    for (path, text) in markdown_files() {
        for name in outside {
            assert!(!text.contains(name), "{path} mentions {name}");
        }
    }
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = Path::new(ROOT).canonicalize().unwrap();
    let files = markdown_files();
    assert!(files.iter().any(|(path, _)| path == "docs/README.md"));
    let mut broken = Vec::new();
    for (path, text) in &files {
        for (line, link) in links(text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let here = root.join(path);
            let target = if file.is_empty() {
                Ok(here.clone())
            } else {
                here.parent().unwrap().join(file).canonicalize()
            };
            let Some(target) = target.ok().filter(|t| t.starts_with(&root)) else {
                broken.push(format!(
                    "{path}:{line}: {link}: no such file in the repository"
                ));
                continue;
            };
            if anchor.is_empty() || target.extension().is_none_or(|ext| ext != "md") {
                continue;
            }
            let headings = anchors(&fs::read_to_string(&target).unwrap());
            if !headings.contains(anchor) {
                broken.push(format!("{path}:{line}: {link}: no heading has that anchor"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_example_shown_is_the_file_a_test_compiles_or_runs() {
    let mut shown = Vec::new();
    let mut wrong = Vec::new();
    for (path, text) in markdown_files() {
        for snippet in snippets(&text).unwrap_or_else(|e| panic!("{path}: {e}")) {
            let file = fs::read_to_string(Path::new(ROOT).join(&snippet.path))
                .unwrap_or_else(|e| panic!("{path}: {}: {e}", snippet.path));
            if let Some(why) = mismatch(&snippet, &file) {
                wrong.push(format!("{path}:{}: {} {why}", snippet.line, snippet.path));
            }
            shown.push((path.clone(), snippet.path));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    shown.sort();
    let expected: Vec<(String, String)> = SHOWN
        .iter()
        .map(|&(page, file)| (page.to_owned(), file.to_owned()))
        .collect();
    assert_eq!(
        shown, expected,
        "each example is shown once, where SHOWN says"
    );
}

#[test]
fn every_setting_is_documented_in_configuration_md_only() {
    let config = fs::read_to_string(format!("{ROOT}/src/config.rs")).unwrap();
    let settings: Vec<&str> = config
        .split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(settings.contains(&"METRICS_BIND"), "{settings:?}");
    let files = markdown_files();
    let configuration = &files
        .iter()
        .find(|(path, _)| path == "docs/configuration.md")
        .unwrap()
        .1;
    for setting in settings {
        assert!(
            configuration.contains(&format!("| `{setting}` |")),
            "{setting} has no row in docs/configuration.md's table"
        );
    }
    // The table's rows live there alone: elsewhere a setting is named and linked.
    for (path, text) in files.iter().filter(|(p, _)| p != "docs/configuration.md") {
        for line in text.lines() {
            assert!(
                !(line.starts_with("| `--") || line.starts_with("| — | `")),
                "{path} repeats a row of the settings table: {line}"
            );
        }
    }
}

#[test]
fn anchors_follow_githubs_rules() {
    let text = "# gatehouse\n## `POST /token`\n```sh\n# not a heading\n```\n\
                ## Sessions, refresh tokens and revocation\n### JWKS or introspection?\n\
                ## Limits\n## Limits\n## See [api.md](api.md) too\n";
    assert_eq!(
        anchors(text),
        BTreeSet::from(
            [
                "gatehouse",
                "post-token",
                "sessions-refresh-tokens-and-revocation",
                "jwks-or-introspection",
                "limits",
                "limits-1",
                "see-apimd-too",
            ]
            .map(str::to_owned)
        )
    );
}

#[test]
fn links_are_read_outside_code() {
    let text = "See [a](a.md#x) and `[b](b.md)`.\n```md\n[c](c.md)\n```\n[d](<d e.md> \"t\")\n";
    assert_eq!(
        links(text),
        vec![(1, "a.md#x".to_owned()), (5, "d e.md".to_owned())]
    );
}

#[test]
fn snippet_checker_finds_a_block_that_differs_from_its_file() {
    let text = "text\n<!-- snippet: a.py -->\n```python\nprint(1)\n```\n\
                1. step\n   <!-- excerpt: b.rs -->\n   ```rust\n   // ...\n       B,\n   ```\n";
    let found = snippets(text).unwrap();
    assert_eq!(
        found,
        vec![
            Snippet {
                line: 2,
                shows: Shows::File,
                path: "a.py".to_owned(),
                block: "print(1)\n".to_owned()
            },
            Snippet {
                line: 7,
                shows: Shows::Lines,
                path: "b.rs".to_owned(),
                block: "// ...\n    B,\n".to_owned()
            },
        ]
    );
    assert_eq!(mismatch(&found[0], "print(1)\n"), None);
    assert!(mismatch(&found[0], "print(2)\n").is_some());
    assert_eq!(mismatch(&found[1], "enum E {\n    A,\n    B,\n}\n"), None);
    assert!(mismatch(&found[1], "enum E {\n    A,\n}\n").is_some());
    assert!(snippets("<!-- snippet: a.py -->\ntext\n").is_err());
}
