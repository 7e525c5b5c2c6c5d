-- `GET /v1/runs?state=failed` (and `cancelled`): what operators look for first,
-- and rare among runs, so without an index the newest-first page would scan
-- every succeeded run to find a few. Partial, so the hot path (runs that
-- never fail) never touches it; `list_runs` plans with the actual filter
-- values, so the predicate matches.
CREATE INDEX runs_stopped_by_id ON runs (state, id)
    WHERE state IN ('failed', 'cancelled');
