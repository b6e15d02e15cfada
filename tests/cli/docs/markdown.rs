//! Reading Markdown as the checker needs it: code spans, fenced blocks and link targets;
//! the `a::B::c` paths of a text; the commands of a shell block.

/// A Markdown file's inline code spans, its fenced blocks (language, text) and its link
/// targets.
#[derive(Default)]
pub struct Markdown {
    pub spans: Vec<String>,
    pub blocks: Vec<(String, String)>,
    pub links: Vec<String>,
}

pub fn markdown(text: &str) -> Markdown {
    let mut md = Markdown::default();
    let mut prose = String::new();
    let mut fence: Option<(String, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            match fence.take() {
                Some(block) => md.blocks.push(block),
                None => fence = Some((lang.trim().to_owned(), String::new())),
            }
        } else if let Some((_, body)) = &mut fence {
            body.push_str(line);
            body.push('\n');
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    // Code spans: a run of backticks up to the next run of the same length.
    let mut rest = prose.as_str();
    let mut outside = String::new();
    while let Some(start) = rest.find('`') {
        outside.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + ticks..];
        let close = "`".repeat(ticks);
        match after.find(&close) {
            Some(end) => {
                md.spans.push(after[..end].trim().replace("\\|", "|"));
                rest = &after[end + ticks..];
            }
            None => rest = after,
        }
    }
    outside.push_str(rest);
    for part in outside.split("](").skip(1) {
        if let Some(target) = part.split(')').next() {
            md.links.push(target.to_owned());
        }
    }
    md
}

pub fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

pub fn is_constant_case(s: &str) -> bool {
    is_ident(s) && s.contains('_') && s.chars().all(|c| !c.is_lowercase()) && s.len() > 2
}

/// The `a::B::c` paths in `text`: runs of identifiers joined by `::`.
pub fn paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if (chars[i].is_alphabetic() || chars[i] == '_')
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || matches!(chars[i - 1], '_' | '.')))
        {
            let mut segments = Vec::new();
            loop {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                segments.push(chars[start..i].iter().collect::<String>());
                let more = i + 2 < chars.len()
                    && chars[i] == ':'
                    && chars[i + 1] == ':'
                    && (chars[i + 2].is_alphabetic() || chars[i + 2] == '_');
                if !more {
                    break;
                }
                i += 2;
            }
            if segments.len() > 1 {
                out.push(segments);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Each line of a shell block, with `\` continuations joined and comments dropped, split
/// at `&&` and `;`.
pub fn shell_commands(block: &str) -> Vec<String> {
    let joined = block.replace("\\\n", " ");
    joined
        .lines()
        .map(|l| l.split(" #").next().unwrap_or("").trim())
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.split("&&").flat_map(|c| c.split(';')))
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}
