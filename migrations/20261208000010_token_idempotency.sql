-- An admin's token creation may carry an Idempotency-Key: a form submitted
-- twice (a browser's reload, a client's retry after a lost answer) then
-- creates one token, and the second answer says so instead of minting a
-- second secret. Keys are per admin; most tokens have none.
ALTER TABLE api_tokens ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX api_tokens_idempotency_key
    ON api_tokens (created_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
