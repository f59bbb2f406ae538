-- Browser sessions of the web page: a token presented once at sign-in becomes a session
-- cookie (HttpOnly, SameSite=Strict), so images load without bearer headers. Only the
-- session id's SHA-256 is kept. A session ends at sign-out, at its expiry, or with its
-- token (revoked or expired tokens end their sessions at once).
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    token_id    TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    -- Sent back in X-CSRF-Token with every change made through the session.
    csrf_token  TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX sessions_token ON sessions (token_id);
