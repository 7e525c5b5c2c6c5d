-- The web console's sign-ins (docs/decisions/0018-web-console.md).
--
-- A session is a random secret in an HttpOnly cookie; only its SHA-256 is
-- stored, so a copy of the database opens no session. It names who signed in
-- and how, never a credential: a token session follows its token (revoking
-- the token ends the session at once, and its role is read from the token),
-- an OpenID session ends when the provider's ID token would have.
CREATE TABLE console_sessions (
    id_hash     text PRIMARY KEY,
    subject     text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    role        api_role NOT NULL,
    groups      text[] NOT NULL DEFAULT '{}',
    auth        text NOT NULL CHECK (auth IN ('token', 'oidc')),
    token_id    uuid REFERENCES api_tokens (id) ON DELETE CASCADE,
    -- The synchronizer token every form of this session must send back.
    csrf        text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL CHECK (expires_at > created_at),
    CONSTRAINT console_sessions_token_iff_token_auth CHECK ((auth = 'token') = (token_id IS NOT NULL))
);
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);

-- A sign-in through the OpenID provider between the redirect and the
-- callback: the PKCE verifier and the nonce, keyed by the hash of the `state`
-- the browser carries. Taken (deleted) by the callback, so a state works once.
CREATE TABLE console_sign_ins (
    state_hash  text PRIMARY KEY,
    verifier    text NOT NULL,
    nonce       text NOT NULL,
    return_to   text NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sign_ins_expires_at ON console_sign_ins (expires_at);
