-- Which way an audited API call came in: `api` (an HTTP client: the CLI, a
-- portal, a script) or `console` (the web console, acting for the user
-- signed in to it, which calls the API in-process). NULL for actions outside
-- the API (`auth` = `database` or `system`) and for rows written before this
-- column, when the two could not be told apart.
ALTER TABLE audit_log
    ADD COLUMN channel text CHECK (channel IN ('api', 'console'));
