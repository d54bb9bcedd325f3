//! The `/patchpilot` slash-command parser. Pure: a comment body in, a command out.
//!
//! A comment triggers only when a line, outside fenced code, HTML comments and `>` quotes,
//! starts with `/patchpilot` followed by whitespace or the end of the line. Quoting a
//! previous command (GitHub's "Quote reply") or showing the syntax in code therefore never
//! starts work, and `/patchpilotx` is not our command. Inline code cannot trigger because
//! the line would start with a backtick. Sub-commands are case-insensitive.
//!
//! `Other` carries the text after `/patchpilot` (that line and the rest of the comment):
//! on an issue it gets a help reply, on a PatchPilot pull request it is review feedback.

use crate::session::issue_body::{Block, blocks};

/// A parsed `/patchpilot` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlashCommand {
    /// `/patchpilot` alone, or `/patchpilot start` / `run` / `fix`.
    Start,
    /// `/patchpilot retry` (also `rerun`).
    Retry,
    /// `/patchpilot cancel` (also `stop`).
    Cancel,
    /// `/patchpilot status`.
    Status,
    /// `/patchpilot help`.
    Help,
    /// `/patchpilot repro <command>`, or `/patchpilot repro` followed by a fenced block.
    Repro(String),
    /// Any other text after `/patchpilot` (including `repro` without a command).
    Other(String),
}

const PREFIX: &str = "/patchpilot";

/// Finds the first `/patchpilot` line that is not quoted or in code and parses it.
pub fn parse_comment(body: &str) -> Option<SlashCommand> {
    let blocks = blocks(body);
    let (index, rest) = blocks
        .iter()
        .enumerate()
        .find_map(|(i, block)| match block {
            Block::Line(line) => command_text(line).map(|rest| (i, rest)),
            _ => None,
        })?;
    let following = &blocks[index + 1..];
    Some(classify(rest, following))
}

/// The text after `/patchpilot` if `line` is a command line.
fn command_text(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    // Indented four or more spaces is an indented code block in Markdown.
    if line.len() - trimmed.len() >= 4 || line.starts_with('\t') {
        return None;
    }
    let head = trimmed.get(..PREFIX.len())?;
    if !head.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let rest = &trimmed[PREFIX.len()..];
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(rest.trim())
}

fn classify(rest: &str, following: &[Block<'_>]) -> SlashCommand {
    let (word, args) = match rest.split_once(char::is_whitespace) {
        Some((word, args)) => (word, args.trim()),
        None => (rest, ""),
    };
    let verb = word.trim_end_matches(['.', '!', ',', ':']).to_lowercase();
    match verb.as_str() {
        "" | "start" | "run" | "fix" => SlashCommand::Start,
        "retry" | "rerun" => SlashCommand::Retry,
        "cancel" | "stop" => SlashCommand::Cancel,
        "status" => SlashCommand::Status,
        "help" => SlashCommand::Help,
        "repro" => match repro_argument(args, following) {
            Some(command) => SlashCommand::Repro(command),
            None => SlashCommand::Other(rest.to_owned()),
        },
        _ => SlashCommand::Other(other_text(rest, following)),
    }
}

/// The command after `repro`: inline (backticks removed) or the fenced block that follows.
fn repro_argument(args: &str, following: &[Block<'_>]) -> Option<String> {
    let inline = strip_backticks(args);
    if !inline.is_empty() {
        return Some(inline.to_owned());
    }
    let next = following.iter().find(|block| match block {
        Block::Line(line) => !line.trim().is_empty(),
        _ => true,
    })?;
    match next {
        Block::Fence { content, .. } => {
            let script = content
                .lines()
                .map(str::trim_end)
                .collect::<Vec<_>>()
                .join("\n");
            let script = script.trim_matches('\n');
            (!script.trim().is_empty()).then(|| script.to_owned())
        }
        _ => None,
    }
}

fn strip_backticks(text: &str) -> &str {
    let text = text.trim();
    if text.trim_matches('`').trim().is_empty() {
        return "";
    }
    let ticks = text.len() - text.trim_start_matches('`').len();
    if ticks > 0 && text.len() > 2 * ticks && text.ends_with(&"`".repeat(ticks)) {
        return text[ticks..text.len() - ticks].trim();
    }
    text
}

/// Feedback text: the rest of the command line plus the rest of the comment, as written.
fn other_text(rest: &str, following: &[Block<'_>]) -> String {
    let mut text = rest.to_owned();
    for block in following {
        text.push('\n');
        match block {
            Block::Line(line) => text.push_str(line),
            Block::Heading(heading) => text.push_str(heading),
            Block::Fence { info, content } => {
                text.push_str("```");
                text.push_str(info);
                text.push('\n');
                text.push_str(content);
                text.push_str("```");
            }
        }
    }
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn parse(body: &str) -> Option<SlashCommand> {
        parse_comment(body)
    }

    #[test]
    fn bare_command_starts() {
        assert_eq!(parse("/patchpilot"), Some(SlashCommand::Start));
        assert_eq!(parse("  /patchpilot  \n"), Some(SlashCommand::Start));
        assert_eq!(parse("/patchpilot start"), Some(SlashCommand::Start));
    }

    #[test]
    fn sub_commands_are_case_insensitive() {
        assert_eq!(parse("/patchpilot RETRY"), Some(SlashCommand::Retry));
        assert_eq!(parse("/patchpilot Cancel"), Some(SlashCommand::Cancel));
        assert_eq!(parse("/PatchPilot status"), Some(SlashCommand::Status));
        assert_eq!(parse("/patchpilot help"), Some(SlashCommand::Help));
        assert_eq!(parse("/patchpilot retry."), Some(SlashCommand::Retry));
        assert_eq!(parse("/patchpilot stop"), Some(SlashCommand::Cancel));
    }

    #[test]
    fn text_without_the_command_does_not_trigger() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("Thanks! I'll look at it."), None);
        assert_eq!(parse("please run /patchpilot on this"), None);
    }

    #[test]
    fn longer_words_are_not_the_command() {
        assert_eq!(parse("/patchpilotx"), None);
        assert_eq!(parse("/patchpilot-retry"), None);
        assert_eq!(parse("/patchpilots retry"), None);
    }

    #[test]
    fn quotes_never_trigger() {
        assert_eq!(parse("> /patchpilot retry\n\nI disagree."), None);
        assert_eq!(parse(">/patchpilot"), None);
        assert_eq!(parse("> > /patchpilot cancel"), None);
    }

    #[test]
    fn code_never_triggers() {
        assert_eq!(parse("Use `/patchpilot retry` to try again."), None);
        assert_eq!(parse("`/patchpilot`"), None);
        assert_eq!(parse("```\n/patchpilot retry\n```"), None);
        assert_eq!(parse("~~~text\n/patchpilot cancel\n~~~"), None);
        assert_eq!(parse("    /patchpilot retry"), None);
        assert_eq!(parse("````md\n```\n/patchpilot\n```\n````"), None);
        // An unclosed fence runs to the end of the comment.
        assert_eq!(parse("```\n/patchpilot retry"), None);
    }

    #[test]
    fn html_comments_never_trigger() {
        assert_eq!(parse("<!-- /patchpilot retry -->"), None);
        assert_eq!(parse("<!--\n/patchpilot retry\n-->\nthanks"), None);
    }

    #[test]
    fn first_real_command_wins() {
        let body = "> /patchpilot cancel\n\n```\n/patchpilot status\n```\n/patchpilot retry\n/patchpilot cancel";
        assert_eq!(parse(body), Some(SlashCommand::Retry));
    }

    #[test]
    fn command_after_other_text_triggers() {
        assert_eq!(
            parse("Looks reproducible.\r\n/patchpilot\r\n"),
            Some(SlashCommand::Start)
        );
    }

    #[test]
    fn repro_takes_the_rest_of_the_line() {
        assert_eq!(
            parse("/patchpilot repro cargo test -p core -- parse::tests"),
            Some(SlashCommand::Repro(
                "cargo test -p core -- parse::tests".into()
            ))
        );
        assert_eq!(
            parse("/patchpilot REPRO `pytest -x tests/test_io.py`"),
            Some(SlashCommand::Repro("pytest -x tests/test_io.py".into()))
        );
    }

    #[test]
    fn repro_can_take_the_following_fence() {
        let body =
            "/patchpilot repro\n\n```sh\npip install -e .\npytest -x tests/test_io.py\n```\n";
        assert_eq!(
            parse(body),
            Some(SlashCommand::Repro(
                "pip install -e .\npytest -x tests/test_io.py".into()
            ))
        );
    }

    #[test]
    fn repro_without_a_command_is_other() {
        assert_eq!(
            parse("/patchpilot repro"),
            Some(SlashCommand::Other("repro".into()))
        );
        assert_eq!(
            parse("/patchpilot repro\nit fails on CI"),
            Some(SlashCommand::Other("repro".into()))
        );
        assert_eq!(
            parse("/patchpilot repro ``"),
            Some(SlashCommand::Other("repro ``".into()))
        );
    }

    #[test]
    fn unknown_text_is_kept_as_feedback() {
        assert_eq!(
            parse("/patchpilot please keep the public API unchanged\nand add a test."),
            Some(SlashCommand::Other(
                "please keep the public API unchanged\nand add a test.".into()
            ))
        );
        assert_eq!(
            parse("/patchpilot frobnicate"),
            Some(SlashCommand::Other("frobnicate".into()))
        );
    }

    #[test]
    fn unicode_text_does_not_panic() {
        assert_eq!(parse("/patchpilöt"), None);
        assert_eq!(parse("/patchpil"), None);
        assert_eq!(parse("é/patchpilot"), None);
        assert_eq!(
            parse("/patchpilot ça ne marche pas 🙃"),
            Some(SlashCommand::Other("ça ne marche pas 🙃".into()))
        );
    }
}
