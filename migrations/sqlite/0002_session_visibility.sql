-- Whether a session's repository is private. Sessions recorded before this column existed,
-- and sessions whose visibility is unknown (API, CLI), count as private: their pages, events
-- and JSON then need the API token or a signed link.
ALTER TABLE sessions ADD COLUMN private INTEGER NOT NULL DEFAULT 1;
