//! A Kubernetes API server stand-in (being written).
