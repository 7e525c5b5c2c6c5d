-- Secrets hubwright holds for environments (IdP client secrets, registration
-- access tokens, generated passwords), sealed with AES-256-GCM under a key from
-- HUBWRIGHT_SECRET_KEY. `key_id` names the key, so keys can be rotated; the
-- environment and name are bound into the ciphertext, so a row moved elsewhere
-- does not decrypt.
CREATE TABLE secrets (
    environment_id  uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    name            text NOT NULL,
    key_id          text NOT NULL,
    nonce           bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext      bytea NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (environment_id, name)
);

-- The OAuth client an environment has at the identity provider. `registering`
-- is committed before the provider is called, so an attempt that was
-- interrupted between the provider's answer and our commit is known on resume.
CREATE TYPE idp_client_state AS ENUM ('registering', 'registered', 'deleted');

CREATE TABLE idp_clients (
    environment_id           uuid PRIMARY KEY REFERENCES environments (id) ON DELETE CASCADE,
    driver                   text NOT NULL,
    client_name              text NOT NULL,
    state                    idp_client_state NOT NULL,
    client_id                text,
    registration_client_uri  text,
    -- Registrations started; more than registrations made means an answer was lost.
    registrations_started    integer NOT NULL DEFAULT 0,
    updated_at               timestamptz NOT NULL,
    CHECK (state <> 'registered' OR client_id IS NOT NULL)
);
