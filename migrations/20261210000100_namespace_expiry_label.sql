-- The expiry an environment's namespace was last labelled with
-- (`hubwright.io/expires-at`, on the namespace and the objects hubwright put
-- in it), so that an extension reaches the cluster's cost tools: workers
-- relabel every live environment whose label lags its expiry (worker:
-- kubernetes::namespace::expiry_labels). NULL: no namespace labelled.
ALTER TABLE environments ADD COLUMN expiry_labelled timestamptz;

-- Namespaces labelled before this column existed carry an expiry nobody
-- recorded: -infinity has each relabelled once.
UPDATE environments e SET expiry_labelled = '-infinity'
WHERE e.phase NOT IN ('tearing_down', 'deleted')
  AND EXISTS (
      SELECT 1 FROM runs r JOIN steps s ON s.run_id = r.id
      WHERE r.environment_id = e.id AND s.kind = 'namespace' AND s.state = 'succeeded'
  );

-- What the workers look for; extensions are rare, so it stays small.
CREATE INDEX environments_expiry_label_lags ON environments (id)
    WHERE expiry_labelled <> expires_at;
