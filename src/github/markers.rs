//! The hidden markers in PatchPilot's own comments, by which the reporter finds its progress
//! comment again and counts its earlier replies. Only trusted in the App's own comments.

/// The hidden marker tying a comment to its session.
pub fn session_marker(session_id: &str) -> String {
    format!("<!-- patchpilot:session={session_id} -->")
}

/// The hidden marker of a one-off reply of some kind (e.g. `unauthorised`); the reporter's
/// rate limit reads it back.
pub fn reply_marker(kind: &str) -> String {
    format!("<!-- patchpilot:reply={kind} -->")
}

/// The session id in a comment's marker, if the comment starts with one.
pub fn parse_session_marker(body: &str) -> Option<&str> {
    let rest = body.trim_start().strip_prefix("<!-- patchpilot:session=")?;
    let (id, _) = rest.split_once(" -->")?;
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then_some(id)
}

/// The check run's `external_id` ties it to its issue: `patchpilot:issue=<n>`.
pub fn check_run_external_id(issue_number: i64) -> String {
    format!("patchpilot:issue={issue_number}")
}

/// The issue a check run's `external_id` names, if it is one of ours.
pub fn issue_from_external_id(external_id: &str) -> Option<i64> {
    external_id.strip_prefix("patchpilot:issue=")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_rejects_forgeries() {
        assert_eq!(
            parse_session_marker(&format!("{}\nhi", session_marker("s-1"))),
            Some("s-1")
        );
        assert_eq!(
            parse_session_marker("hi <!-- patchpilot:session=s-1 -->"),
            None
        );
        assert_eq!(parse_session_marker("<!-- patchpilot:session= -->"), None);
        assert_eq!(
            parse_session_marker("<!-- patchpilot:session=a b -->"),
            None
        );
    }
}
