//! cloudtoken.toml(5), written from the documented example configuration (examples/cloudtoken.example.toml)
//! so that the page says exactly what the example says. The example's conventions: its opening comment
//! describes the file; a `[table]` or `[[table]]` line starts a part, with the comment just before it as
//! its introduction; each key (`key = value`, or `# key = value` when it is left at its default) is
//! described by the comment lines just above it, and keys on consecutive lines share one description;
//! comment lines indented past `# ` are lists or tables and keep their layout.

use roff::{bold, italic, roman, Inline, Roff};

/// One key as the example shows it.
#[derive(Debug, PartialEq)]
struct Key {
    name: String,
    value: String,
    /// `# key = value`: left at its default in the example.
    commented: bool,
}

/// Text of a description: filled paragraphs and lines kept as they are.
#[derive(Debug, PartialEq)]
enum Block {
    Para(String),
    Verbatim(Vec<String>),
}

#[derive(Debug, PartialEq)]
enum Item {
    Keys { keys: Vec<Key>, text: Vec<Block> },
    Note(Vec<Block>),
}

#[derive(Debug, PartialEq)]
struct Part {
    /// `[log]`, `[[token]]`.
    header: String,
    intro: Vec<Block>,
    items: Vec<Item>,
}

#[derive(Debug, PartialEq)]
struct Example {
    intro: Vec<Block>,
    parts: Vec<Part>,
}

/// `key = value` or `# key = value`, with a trailing `  # remark` moved into `remark`.
fn key_line(line: &str) -> Option<(Key, Option<String>)> {
    let (commented, rest) = match line.strip_prefix("# ") {
        Some(r) => (true, r),
        None => (false, line),
    };
    let (name, value) = rest.split_once(" = ")?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    let (value, remark) = match value.find("  #") {
        Some(i) => (
            value[..i].trim_end(),
            Some(
                value[i..]
                    .trim_start()
                    .trim_start_matches('#')
                    .trim()
                    .to_owned(),
            ),
        ),
        None => (value, None),
    };
    Some((
        Key {
            name: name.to_owned(),
            value: value.to_owned(),
            commented,
        },
        remark,
    ))
}

/// Comment lines (without `#`) to blocks: plain lines are joined into a paragraph, indented ones kept.
fn blocks(lines: &[String]) -> Vec<Block> {
    let mut out = Vec::new();
    for line in lines {
        let indented = line.starts_with(' ');
        match (out.last_mut(), indented) {
            (Some(Block::Verbatim(v)), true) => v.push(line.clone()),
            (Some(Block::Para(p)), false) => {
                p.push(' ');
                p.push_str(line);
            }
            (_, true) => out.push(Block::Verbatim(vec![line.clone()])),
            (_, false) => out.push(Block::Para(line.clone())),
        }
    }
    out
}

fn parse(text: &str) -> Result<Example, String> {
    let mut intro: Option<Vec<Block>> = None;
    let mut parts: Vec<Part> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut last_was_key = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.is_empty() {
            let text = blocks(&std::mem::take(&mut pending));
            if intro.is_none() {
                intro = Some(text);
            } else if !text.is_empty() {
                match parts.last_mut() {
                    Some(part) => part.items.push(Item::Note(text)),
                    None => return Err(format!("line {}: text before the first table", n + 1)),
                }
            }
            last_was_key = false;
            continue;
        }
        if line.starts_with('[') {
            parts.push(Part {
                header: line.to_owned(),
                intro: blocks(&std::mem::take(&mut pending)),
                items: Vec::new(),
            });
            intro.get_or_insert_with(Vec::new);
            last_was_key = false;
            continue;
        }
        if let Some((key, remark)) = key_line(line) {
            let part = parts
                .last_mut()
                .ok_or_else(|| format!("line {}: a key before the first table", n + 1))?;
            let mut text = blocks(&std::mem::take(&mut pending));
            if let Some(r) = remark {
                text.push(Block::Para(format!("({r})")));
            }
            match part.items.last_mut() {
                Some(Item::Keys { keys, text: prev }) if last_was_key => {
                    keys.push(key);
                    prev.extend(text);
                }
                _ => part.items.push(Item::Keys {
                    keys: vec![key],
                    text,
                }),
            }
            last_was_key = true;
            continue;
        }
        match line.strip_prefix('#') {
            Some(c) => pending.push(c.strip_prefix(' ').unwrap_or(c).to_owned()),
            None => {
                return Err(format!(
                    "line {}: neither a comment, a table nor a key: {line}",
                    n + 1
                ))
            }
        }
        last_was_key = false;
    }
    let keys: usize = parts
        .iter()
        .flat_map(|p| &p.items)
        .map(|i| match i {
            Item::Keys { keys, .. } => keys.len(),
            Item::Note(_) => 0,
        })
        .sum();
    if keys == 0 {
        return Err("the example configuration documents no key".into());
    }
    Ok(Example {
        intro: intro.unwrap_or_default(),
        parts,
    })
}

/// `para` is the paragraph macro: `PP` at the left margin, `IP` indented under a key.
fn write_blocks(r: &mut Roff, blocks: &[Block], para: &str) {
    for b in blocks {
        match b {
            Block::Para(p) => {
                r.control(para, []);
                r.text([roman(p.as_str())]);
            }
            Block::Verbatim(lines) => {
                r.control(para, []);
                r.control("nf", []);
                for l in lines {
                    r.text([roman(l.as_str())]);
                }
                r.control("fi", []);
            }
        }
    }
}

/// The page, in roff.
pub fn render(example_text: &str) -> Result<String, String> {
    let example = parse(example_text)?;
    let mut r = Roff::new();
    r.control(
        "TH",
        [
            "CLOUDTOKEN.TOML",
            "5",
            "",
            &format!("cloudtoken {}", env!("CARGO_PKG_VERSION")),
        ],
    );
    r.control("SH", ["NAME"]);
    r.text([roman(
        "cloudtoken.toml - configuration of the cloudtoken PKCS#11 module",
    )]);
    r.control("SH", ["DESCRIPTION"]);
    write_blocks(&mut r, &example.intro, "PP");
    for part in &example.parts {
        r.control("SH", [part.header.as_str()]);
        write_blocks(&mut r, &part.intro, "PP");
        for item in &part.items {
            match item {
                Item::Note(text) => write_blocks(&mut r, text, "PP"),
                Item::Keys { keys, text } => {
                    r.control("TP", []);
                    let mut head: Vec<Inline> = Vec::new();
                    for (i, k) in keys.iter().enumerate() {
                        if i > 0 {
                            head.push(roman(", "));
                        }
                        head.push(bold(k.name.as_str()));
                        head.push(roman(format!(" = {}", k.value)));
                        if k.commented {
                            head.push(italic(" (not set in the example)"));
                        }
                    }
                    r.text(head);
                    // The first paragraph goes right under the key (the .TP body), the rest indented.
                    write_blocks(&mut r, text, "IP");
                }
            }
        }
    }
    r.control("SH", ["EXAMPLE"]);
    r.text([roman(
        "The documented example, installed as /usr/share/cloudtoken/cloudtoken.example.toml:",
    )]);
    r.control("PP", []);
    r.control("nf", []);
    for line in example_text.lines() {
        r.text([roman(line)]);
    }
    r.control("fi", []);
    r.control("SH", ["SEE ALSO"]);
    r.text([roman("cloudtoken(1), cloudtoken-enroll(1), p11-kit(8)")]);
    Ok(r.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../../../examples/cloudtoken.example.toml");

    fn all_keys(e: &Example) -> Vec<(&str, &str, bool)> {
        e.parts
            .iter()
            .flat_map(|p| {
                p.items.iter().flat_map(move |i| match i {
                    Item::Keys { keys, .. } => keys
                        .iter()
                        .map(|k| (p.header.as_str(), k.name.as_str(), k.commented))
                        .collect(),
                    Item::Note(_) => Vec::new(),
                })
            })
            .collect()
    }

    #[test]
    fn keys_tables_descriptions_and_layout_are_read() {
        let e = parse(
            "# The file.\n# More about it.\n\n[log]\n# How loud.\nlevel = \"error\"\n\
             # file = \"/x.log\"     # default: standard error\n\n# One per slot.\n[[token]]\n\
             # Client certificate (PEM files).\n# client_cert = \"/c.pem\"\n# client_key = \"/k.pem\"\n\
             # Modes:\n#   \"pin\":  asks\n#   \"free\": does not\nmode = \"pin\"\n",
        )
        .unwrap();
        assert_eq!(e.intro, [Block::Para("The file. More about it.".into())]);
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.parts[1].header, "[[token]]");
        assert_eq!(e.parts[1].intro, [Block::Para("One per slot.".into())]);
        assert_eq!(
            all_keys(&e),
            [
                ("[log]", "level", false),
                ("[log]", "file", true),
                ("[[token]]", "client_cert", true),
                ("[[token]]", "client_key", true),
                ("[[token]]", "mode", false),
            ]
        );
        // level and file are one group: file follows level without a comment between them.
        let Item::Keys { keys, text } = &e.parts[0].items[0] else {
            panic!("not keys")
        };
        assert_eq!(keys[1].value, "\"/x.log\"");
        assert_eq!(
            text,
            &[
                Block::Para("How loud.".into()),
                Block::Para("(default: standard error)".into())
            ]
        );
        let Item::Keys { text, .. } = &e.parts[1].items[1] else {
            panic!("not keys")
        };
        assert_eq!(
            text,
            &[
                Block::Para("Modes:".into()),
                Block::Verbatim(vec![
                    "  \"pin\":  asks".into(),
                    "  \"free\": does not".into()
                ])
            ]
        );
    }

    #[test]
    fn what_is_not_a_comment_a_table_or_a_key_is_refused() {
        assert!(parse("# x\n\n[t]\nnot a key\n")
            .unwrap_err()
            .contains("line 4"));
        assert!(parse("# x\n\nkey = 1\n")
            .unwrap_err()
            .contains("before the first table"));
        assert!(parse("# only words\n").unwrap_err().contains("no key"));
    }

    #[test]
    fn the_shipped_example_gives_a_page_with_every_key() {
        let e = parse(SHIPPED).expect("the shipped example parses");
        let keys = all_keys(&e);
        for want in [
            "level",
            "label",
            "url",
            "url_file",
            "ca_file",
            "account",
            "refresh_token_file",
            "mode",
            "otp_channels",
            "prompt_command",
            "pin_file",
            "totp_secret_file",
            "agent_socket",
        ] {
            assert!(
                keys.iter().any(|k| k.1 == want),
                "{want} missing from {keys:?}"
            );
        }
        let page = render(SHIPPED).unwrap();
        assert!(page.contains(".TH CLOUDTOKEN.TOML 5"));
        assert!(page.contains(".SH [[token]]"));
        for (_, name, _) in &keys {
            assert!(
                page.contains(&format!("\\fB{name}\\fR")),
                "{name} not on the page"
            );
        }
    }
}
