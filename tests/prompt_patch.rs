//! The real patch prompt, sent by the real clients to the scripted model server: what the
//! model receives on the wire carries the protocol and the evidence, in both formats.

mod support;

use std::sync::Arc;

use patchpilot::agent::prompt::{
    AttemptFeedback, PatchPromptInput, PreviousAttempt, PromptBudget, PromptFile, RepoInstructions,
    build_patch_request,
};
use patchpilot::llm::anthropic::AnthropicClient;
use patchpilot::llm::openai::OpenAiClient;
use patchpilot::llm::{ClientOptions, Model};
use secrecy::SecretString;
use support::fake_model::{FAKE_MODEL_KEY, FakeModel, Reply};

fn input() -> PatchPromptInput {
    PatchPromptInput {
        title: "mean() of an empty list crashes".into(),
        description: "`stats.mean([])` raises ZeroDivisionError instead of returning None.".into(),
        repro_command: "python -m pytest tests/test_stats.py -x".into(),
        failing_output: "collected 3 items\n\ntests/test_stats.py F\n\nE   ZeroDivisionError: division by zero\nstats.py:4: ZeroDivisionError\n".into(),
        files: vec![PromptFile {
            path: "stats.py".into(),
            reason: "named in the traceback (line 4)".into(),
            content: "def mean(xs):\n    total = sum(xs)\n    n = len(xs)\n    return total / n\n".into(),
            lines: vec![4],
        }],
        similar_fixes: vec![],
        instructions: Some(RepoInstructions {
            path: "AGENTS.md".into(),
            content: "Keep functions pure.".into(),
        }),
        previous_attempts: vec![PreviousAttempt {
            reply: "stats.py\n<<<<<<< SEARCH\n    return total / m\n=======\n    return None\n>>>>>>> REPLACE".into(),
            feedback: AttemptFeedback::EditError {
                error: "SEARCH block 1 (stats.py) does not match; closest: line 4 `    return total / n`".into(),
            },
        }],
    }
}

async fn send(model: &dyn Model) {
    let req = build_patch_request(&input(), &PromptBudget::default(), 2048, Some(0.0));
    model.complete(&req).await.unwrap();
}

fn opts(base: String) -> ClientOptions {
    ClientOptions::new(base, Some(SecretString::from(FAKE_MODEL_KEY)), "m")
}

#[tokio::test]
async fn the_model_receives_protocol_evidence_and_history_in_both_formats() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::text("a"));
    fake.push_reply(Reply::text("b"));
    let anthropic: Arc<dyn Model> =
        Arc::new(AnthropicClient::new(opts(fake.anthropic_base_url())).unwrap());
    let openai: Arc<dyn Model> = Arc::new(OpenAiClient::new(opts(fake.openai_base_url())).unwrap());

    send(anthropic.as_ref()).await;
    send(openai.as_ref()).await;

    for sent in fake.requests() {
        let system = sent.system();
        assert!(system.contains("<<<<<<< SEARCH") && system.contains(">>>>>>> REPLACE"));
        let first = sent.first_user_message();
        assert!(
            first.contains("E   ZeroDivisionError: division by zero"),
            "{first}"
        );
        assert!(first.contains("## stats.py"));
        assert!(first.contains("   4 |     return total / n"));
        assert!(first.contains("python -m pytest tests/test_stats.py -x"));
        assert!(first.contains("Keep functions pure."));
        let roles: Vec<String> = sent
            .messages()
            .into_iter()
            .map(|(role, _)| role)
            .filter(|r| r != "system")
            .collect();
        assert_eq!(roles, vec!["user", "assistant", "user"]);
        let last = sent.messages().pop().unwrap().1;
        assert!(last.contains("closest: line 4"), "{last}");
    }
}
