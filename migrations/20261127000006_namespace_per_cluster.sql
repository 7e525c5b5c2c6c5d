-- An environment's namespace is fixed when it is requested, and two live
-- environments never share one on a cluster: the namespace step refuses a
-- namespace that is not its own, so the second request is refused up front.
CREATE UNIQUE INDEX environments_cluster_namespace_live
    ON environments (cluster, namespace) WHERE phase <> 'deleted' AND namespace IS NOT NULL;
