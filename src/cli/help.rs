//! `rollout-trace COMMAND --help` for the native commands, laid out as
//! argparse lays it out (Python 3.10+: usage wrapping, sections, help
//! column, `textwrap` line breaking), from the same table. The tests
//! compare it with argparse's at many widths.

use super::spec::{self, Arg, Command, Kind};

const HELP_FLAGS: &[&str] = &["-h", "--help"];
const HELP_HELP: &str = "show this help message and exit";

/// A help entry: the table's arguments plus argparse's own `-h`.
struct Entry<'a> {
    flags: &'a [&'a str],
    metavar: String,
    kind: Kind,
    help: Option<&'a str>,
    required: bool,
}

impl Entry<'_> {
    fn of(arg: &Arg) -> Entry<'_> {
        let metavar = arg.metavar.map_or_else(|| arg.dest.to_uppercase(), str::to_string);
        Entry { flags: arg.flags, metavar, kind: arg.kind, help: arg.help, required: arg.required }
    }

    /// How it shows in the list: `-o OUT, --output OUT`.
    fn invocation(&self) -> String {
        if self.flags.is_empty() {
            return self.metavar.clone();
        }
        if self.kind.takes_value() {
            self.flags.iter().map(|flag| format!("{flag} {}", self.metavar)).collect::<Vec<_>>().join(", ")
        } else {
            self.flags.join(", ")
        }
    }

    /// How it shows in the usage line: `[-o OUT]`, `[BUNDLE ...]`.
    fn usage(&self) -> String {
        if self.flags.is_empty() {
            return match self.kind {
                Kind::Many => format!("[{} ...]", self.metavar),
                _ => self.metavar.clone(),
            };
        }
        let part = if self.kind.takes_value() {
            format!("{} {}", self.flags[0], self.metavar)
        } else {
            self.flags[0].to_string()
        };
        if self.required {
            part
        } else {
            format!("[{part}]")
        }
    }
}

/// argparse's width: the terminal's columns minus 2.
pub fn width_for(columns: usize) -> usize {
    columns.saturating_sub(2)
}

/// `parser.format_help()` of a native command's subparser, `width` as
/// argparse computes it.
pub fn format_help(command: &Command, width: usize) -> String {
    let help =
        Entry { flags: HELP_FLAGS, metavar: String::new(), kind: Kind::Flag, help: Some(HELP_HELP), required: false };
    let table: Vec<(Option<&str>, Vec<Entry<'_>>)> =
        command.groups.iter().map(|group| (group.title, group.args.iter().map(Entry::of).collect())).collect();
    let optionals: Vec<&Entry<'_>> = std::iter::once(&help)
        .chain(table.iter().flat_map(|(_, entries)| entries.iter()))
        .filter(|e| !e.flags.is_empty())
        .collect();
    let positionals: Vec<&Entry<'_>> =
        table.iter().flat_map(|(_, entries)| entries.iter()).filter(|e| e.flags.is_empty()).collect();
    // argparse's sections: positionals, options (-h first), then each titled group.
    let mut sections: Vec<(&str, Vec<&Entry<'_>>)> = vec![
        ("positional arguments", positionals.clone()),
        ("options", std::iter::once(&help).chain(untitled_optionals(&table)).collect()),
    ];
    let mut titled: Vec<(&str, Vec<&Entry<'_>>)> = Vec::new();
    for (title, entries) in &table {
        if let Some(title) = title {
            match titled.iter_mut().find(|(t, _)| t == title) {
                Some((_, list)) => list.extend(entries.iter()),
                None => titled.push((title, entries.iter().collect())),
            }
        }
    }
    sections.extend(titled);

    let prog = format!("{} {}", spec::PROG, command.name);
    let mut out = String::new();
    out.push_str(&format_usage(&prog, &optionals, &positionals, width));
    out.push_str(&fill(command.description, width.max(11), ""));
    out.push_str("\n\n");
    let max_help_position = 24usize.min(width.saturating_sub(20).max(4));
    let action_max = sections.iter().flat_map(|(_, entries)| entries.iter()).map(|e| e.invocation().len() + 2).max();
    let help_position = (action_max.unwrap_or(0) + 2).min(max_help_position);
    let help_width = width.saturating_sub(help_position).max(11);
    let action_width = help_position.saturating_sub(4);
    for (heading, entries) in &sections {
        if entries.is_empty() {
            continue;
        }
        out.push('\n');
        out.push_str(heading);
        out.push_str(":\n");
        for entry in entries {
            let invocation = entry.invocation();
            let Some(help) = entry.help.filter(|h| !h.trim().is_empty()) else {
                out.push_str(&format!("  {invocation}\n"));
                continue;
            };
            let lines = wrap(&normalize_space(help), help_width);
            if invocation.len() <= action_width {
                out.push_str(&format!("  {invocation:<action_width$}  {}\n", lines[0]));
            } else {
                out.push_str(&format!("  {invocation}\n{:help_position$}{}\n", "", lines[0]));
            }
            for line in &lines[1..] {
                out.push_str(&format!("{:help_position$}{line}\n", ""));
            }
        }
        out.push('\n');
    }
    // argparse collapses runs of blank lines and ends with one newline.
    let mut text = out;
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    format!("{}\n", text.trim_matches('\n'))
}

fn untitled_optionals<'a, 'b>(table: &'b [(Option<&'a str>, Vec<Entry<'a>>)]) -> impl Iterator<Item = &'b Entry<'a>> {
    table
        .iter()
        .filter(|(title, _)| title.is_none())
        .flat_map(|(_, entries)| entries.iter())
        .filter(|e| !e.flags.is_empty())
}

fn format_usage(prog: &str, optionals: &[&Entry<'_>], positionals: &[&Entry<'_>], width: usize) -> String {
    let prefix = "usage: ";
    let opt_parts: Vec<String> = optionals.iter().map(|e| e.usage()).collect();
    let pos_parts: Vec<String> = positionals.iter().map(|e| e.usage()).collect();
    let all: Vec<&str> = opt_parts.iter().chain(&pos_parts).map(String::as_str).collect();
    let usage = if all.is_empty() { prog.to_string() } else { format!("{prog} {}", all.join(" ")) };
    let text_width = width;
    if prefix.len() + usage.len() <= text_width {
        return format!("{prefix}{usage}\n\n");
    }
    let get_lines = |parts: &[&str], indent: &str, prefix: Option<&str>| -> Vec<String> {
        let mut lines = Vec::new();
        let mut line: Vec<&str> = Vec::new();
        let mut line_len = prefix.map_or(indent.len(), str::len) as i64 - 1;
        for part in parts {
            if line_len + 1 + part.len() as i64 > text_width as i64 && !line.is_empty() {
                lines.push(format!("{indent}{}", line.join(" ")));
                line.clear();
                line_len = indent.len() as i64 - 1;
            }
            line.push(part);
            line_len += part.len() as i64 + 1;
        }
        if !line.is_empty() {
            lines.push(format!("{indent}{}", line.join(" ")));
        }
        if prefix.is_some() && !lines.is_empty() {
            lines[0] = lines[0][indent.len()..].to_string();
        }
        lines
    };
    let opt: Vec<&str> = opt_parts.iter().map(String::as_str).collect();
    let pos: Vec<&str> = pos_parts.iter().map(String::as_str).collect();
    let lines = if (prefix.len() + prog.len()) as f64 <= 0.75 * text_width as f64 {
        let indent = " ".repeat(prefix.len() + prog.len() + 1);
        if !opt.is_empty() {
            let mut first: Vec<&str> = vec![prog];
            first.extend(&opt);
            let mut lines = get_lines(&first, &indent, Some(prefix));
            lines.extend(get_lines(&pos, &indent, None));
            lines
        } else if !pos.is_empty() {
            let mut first: Vec<&str> = vec![prog];
            first.extend(&pos);
            get_lines(&first, &indent, Some(prefix))
        } else {
            vec![prog.to_string()]
        }
    } else {
        let indent = " ".repeat(prefix.len());
        let parts: Vec<&str> = opt.iter().chain(&pos).copied().collect();
        let mut lines = get_lines(&parts, &indent, None);
        if lines.len() > 1 {
            lines = get_lines(&opt, &indent, None);
            lines.extend(get_lines(&pos, &indent, None));
        }
        let mut all = vec![prog.to_string()];
        all.extend(lines);
        all
    };
    format!("{prefix}{}\n\n", lines.join("\n"))
}

fn normalize_space(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `textwrap.fill(text, width, initial_indent=indent, subsequent_indent=indent)`
/// of argparse's `_fill_text`.
fn fill(text: &str, width: usize, indent: &str) -> String {
    wrap(&normalize_space(text), width.saturating_sub(indent.len()))
        .iter()
        .map(|line| format!("{indent}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_letter(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_word_punct(c: u8) -> bool {
    is_word(c) || b"!\"'&.,?".contains(&c)
}

/// textwrap's chunks (`TextWrapper.wordsep_re`) of ASCII text.
fn chunks(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while start < b.len() {
        if b[start].is_ascii_whitespace() {
            let end = (start..b.len()).find(|&i| !b[i].is_ascii_whitespace()).unwrap_or(b.len());
            out.push(&text[start..end]);
            start = end;
            continue;
        }
        // An em-dash between words.
        if start > 0 && is_word_punct(b[start - 1]) && b[start] == b'-' {
            let dashes = (start..b.len()).take_while(|&i| b[i] == b'-').count();
            if dashes >= 2 && start + dashes < b.len() && is_word(b[start + dashes]) {
                out.push(&text[start..start + dashes]);
                start += dashes;
                continue;
            }
        }
        // A word, up to a hyphen it may break after, or its end.
        let mut end = b.len();
        let mut p = start + 1;
        while p <= b.len() {
            if p == b.len() || b[p].is_ascii_whitespace() {
                end = p;
                break;
            }
            if b[p] == b'-' {
                let before_two = p >= 2 && is_letter(b[p - 1]) && is_letter(b[p - 2]);
                let before_dashed = p >= 3 && is_letter(b[p - 1]) && b[p - 2] == b'-' && is_letter(b[p - 3]);
                let after = p + 1 < b.len()
                    && is_letter(b[p + 1])
                    && (p + 2 < b.len() && is_letter(b[p + 2])
                        || p + 3 < b.len() && b[p + 2] == b'-' && is_letter(b[p + 3]));
                if (before_two || before_dashed) && after {
                    end = p + 1;
                    break;
                }
                // The start of an em-dash ends the word before it.
                let dashes = (p..b.len()).take_while(|&i| b[i] == b'-').count();
                if is_word_punct(b[p - 1]) && dashes >= 2 && p + dashes < b.len() && is_word(b[p + dashes]) {
                    end = p;
                    break;
                }
            }
            p += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

/// `textwrap.wrap(text, width)` (break_long_words, break_on_hyphens,
/// drop_whitespace) of ASCII text.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut pending: Vec<String> = chunks(text).into_iter().rev().map(str::to_string).collect();
    let mut lines: Vec<String> = Vec::new();
    while !pending.is_empty() {
        let mut line: Vec<String> = Vec::new();
        let mut len = 0;
        if pending.last().is_some_and(|c| c.trim().is_empty()) && !lines.is_empty() {
            pending.pop();
        }
        while let Some(chunk) = pending.last() {
            if len + chunk.len() <= width {
                len += chunk.len();
                line.push(pending.pop().unwrap_or_default());
            } else {
                break;
            }
        }
        if pending.last().is_some_and(|c| c.len() > width) {
            let space_left = if width < 1 { 1 } else { width - len };
            let chunk = pending.pop().unwrap_or_default();
            let mut end = space_left;
            if chunk.len() > space_left {
                if let Some(hyphen) = chunk[..space_left].rfind('-') {
                    if hyphen > 0 && chunk[..hyphen].bytes().any(|c| c != b'-') {
                        end = hyphen + 1;
                    }
                }
            }
            line.push(chunk[..end].to_string());
            pending.push(chunk[end..].to_string());
        }
        if line.last().is_some_and(|c| c.trim().is_empty()) {
            line.pop();
        }
        if !line.is_empty() {
            lines.push(line.concat());
        }
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_as_textwrap() {
        assert_eq!(chunks("a trace-reduce b"), ["a", " ", "trace-", "reduce", " ", "b"]);
        assert_eq!(chunks("--strict x"), ["--strict", " ", "x"]);
        assert_eq!(chunks("machine-readable"), ["machine-", "readable"]);
        assert_eq!(chunks("a-b"), ["a-b"]);
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
    }
}
