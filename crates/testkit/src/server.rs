//! A real `hubwright serve --api` process for API tests (being written).
