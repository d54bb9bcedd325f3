-- Follow-up iterations on a pull request PatchPilot opened (review feedback, its own failing
-- CI): each is a session linked to the first one. `iteration_key` names what started it
-- (`comment:<id>`, `review:<id>`, `ci:<head sha>`); the unique index makes "one iteration per
-- review, one CI round per head commit" hold even when deliveries race.
ALTER TABLE sessions ADD COLUMN parent_session_id TEXT;
ALTER TABLE sessions ADD COLUMN iteration_key TEXT;
ALTER TABLE sessions ADD COLUMN iteration_request TEXT;
CREATE UNIQUE INDEX sessions_iteration_once ON sessions (parent_session_id, iteration_key);
