//! Slash-command parser (minimal; replaced by the full parser from the gitops branch).

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlashCommand {
    Start,
    Retry,
    Cancel,
    Status,
    Help,
    Repro(String),
    Other(String),
}

pub fn parse_comment(body: &str) -> Option<SlashCommand> {
    let line = body
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("/patchpilot"))?;
    let rest = line.strip_prefix("/patchpilot")?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim();
    let (word, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    Some(match word.to_lowercase().as_str() {
        "" => SlashCommand::Start,
        "retry" => SlashCommand::Retry,
        "cancel" => SlashCommand::Cancel,
        "status" => SlashCommand::Status,
        "help" => SlashCommand::Help,
        "repro" if !arg.trim().is_empty() => SlashCommand::Repro(arg.trim().to_owned()),
        _ => SlashCommand::Other(rest.to_owned()),
    })
}
