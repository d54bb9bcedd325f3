//! Per-session caps on model use, and the usage tally that session reports show.
//!
//! A [`BudgetedModel`] is created when a session starts and wraps the shared model. Before
//! each call it refuses with [`ModelError::Budget`] if the session has used its turns or
//! tokens, or its wall time has run out; a call in flight is cut off when the wall time runs
//! out. Every successful call's [`Usage`] is added to the tally. The wall clock is tokio's, so
//! tests can pause and advance it.
//!
//! The token cap is checked before a call, so one call may overshoot it by at most that call's
//! usage: the cap bounds spend, it does not promise an exact stop.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::{BudgetLimit, ChatRequest, ChatResponse, Generation, Model, ModelError, Usage};

/// The caps for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionBudget {
    pub max_turns: u32,
    pub max_tokens: u64,
    pub max_wall: Duration,
}

impl Default for SessionBudget {
    fn default() -> Self {
        Self {
            max_turns: 10,
            max_tokens: 500_000,
            max_wall: Duration::from_secs(30 * 60),
        }
    }
}

/// What a session has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// Successful model calls.
    pub turns: u32,
    pub usage: Usage,
}

/// A model that enforces a [`SessionBudget`] and tallies usage.
pub struct BudgetedModel {
    inner: Arc<dyn Model>,
    budget: SessionBudget,
    started: Instant,
    totals: Mutex<UsageTotals>,
}

impl BudgetedModel {
    /// Starts the session's clock now.
    pub fn new(inner: Arc<dyn Model>, budget: SessionBudget) -> Self {
        Self {
            inner,
            budget,
            started: Instant::now(),
            totals: Mutex::new(UsageTotals::default()),
        }
    }

    /// Usage so far.
    pub fn totals(&self) -> UsageTotals {
        *self.totals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn budget(&self) -> SessionBudget {
        self.budget
    }

    /// Wall time left, or the cap that refuses the next call.
    fn check(&self) -> Result<Duration, BudgetLimit> {
        let totals = self.totals();
        if totals.turns >= self.budget.max_turns {
            return Err(BudgetLimit::Turns {
                max: self.budget.max_turns,
            });
        }
        if totals.usage.total() >= self.budget.max_tokens {
            return Err(BudgetLimit::Tokens {
                max: self.budget.max_tokens,
                used: totals.usage.total(),
            });
        }
        self.budget
            .max_wall
            .checked_sub(self.started.elapsed())
            .filter(|left| !left.is_zero())
            .ok_or(self.wall_limit())
    }

    fn wall_limit(&self) -> BudgetLimit {
        BudgetLimit::WallTime {
            max_secs: self.budget.max_wall.as_secs(),
        }
    }
}

#[async_trait::async_trait]
impl Model for BudgetedModel {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn generation(&self) -> Generation {
        self.inner.generation()
    }

    /// A new budget for the other model: callers choose the model before the session starts.
    fn with_model(&self, model: &str) -> Arc<dyn Model> {
        Arc::new(BudgetedModel::new(
            self.inner.with_model(model),
            self.budget,
        ))
    }

    async fn context_tokens(&self) -> Option<u32> {
        self.inner.context_tokens().await
    }

    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let left = self.check().map_err(ModelError::Budget)?;
        let response = tokio::time::timeout(left, self.inner.complete(req))
            .await
            .map_err(|_| ModelError::Budget(self.wall_limit()))??;
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        totals.turns += 1;
        totals.usage.input_tokens += response.usage.input_tokens;
        totals.usage.output_tokens += response.usage.output_tokens;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every call with fixed usage after an optional delay.
    struct Fixed {
        usage: Usage,
        delay: Duration,
    }

    #[async_trait::async_trait]
    impl Model for Fixed {
        fn name(&self) -> String {
            "test/fixed".into()
        }
        fn generation(&self) -> Generation {
            Generation::default()
        }
        fn with_model(&self, _: &str) -> Arc<dyn Model> {
            Arc::new(Fixed {
                usage: self.usage,
                delay: self.delay,
            })
        }
        async fn complete(&self, _: &ChatRequest) -> Result<ChatResponse, ModelError> {
            tokio::time::sleep(self.delay).await;
            Ok(ChatResponse {
                text: "ok".into(),
                usage: self.usage,
                stop_reason: None,
                model: "fixed".into(),
            })
        }
    }

    fn model(input: u64, output: u64, delay: Duration) -> Arc<dyn Model> {
        Arc::new(Fixed {
            usage: Usage {
                input_tokens: input,
                output_tokens: output,
            },
            delay,
        })
    }

    fn req() -> ChatRequest {
        ChatRequest {
            system: String::new(),
            messages: vec![],
            max_tokens: 10,
            temperature: None,
        }
    }

    #[tokio::test]
    async fn turns_cap_refuses_the_call_after_the_last() {
        let budget = SessionBudget {
            max_turns: 2,
            ..SessionBudget::default()
        };
        let m = BudgetedModel::new(model(1, 1, Duration::ZERO), budget);
        m.complete(&req()).await.unwrap();
        m.complete(&req()).await.unwrap();
        let err = m.complete(&req()).await.unwrap_err();
        assert!(matches!(
            err,
            ModelError::Budget(BudgetLimit::Turns { max: 2 })
        ));
        assert_eq!(m.totals().turns, 2);
    }

    #[tokio::test]
    async fn tokens_accumulate_and_cap() {
        let budget = SessionBudget {
            max_tokens: 250,
            ..SessionBudget::default()
        };
        let m = BudgetedModel::new(model(100, 20, Duration::ZERO), budget);
        m.complete(&req()).await.unwrap();
        m.complete(&req()).await.unwrap();
        assert_eq!(
            m.totals().usage,
            Usage {
                input_tokens: 200,
                output_tokens: 40
            }
        );
        // 240 < 250: one more call is allowed and overshoots; the next is refused.
        m.complete(&req()).await.unwrap();
        let err = m.complete(&req()).await.unwrap_err();
        assert!(matches!(
            err,
            ModelError::Budget(BudgetLimit::Tokens {
                max: 250,
                used: 360
            })
        ));
    }

    #[tokio::test]
    async fn wall_time_cuts_off_a_slow_call_and_refuses_later_ones() {
        let budget = SessionBudget {
            max_wall: Duration::from_millis(300),
            ..SessionBudget::default()
        };
        let m = BudgetedModel::new(model(1, 1, Duration::from_secs(30)), budget);
        let err = m.complete(&req()).await.unwrap_err();
        assert!(matches!(
            err,
            ModelError::Budget(BudgetLimit::WallTime { .. })
        ));
        assert_eq!(m.totals().turns, 0);
        let err = m.complete(&req()).await.unwrap_err();
        assert!(matches!(
            err,
            ModelError::Budget(BudgetLimit::WallTime { .. })
        ));
    }
}
