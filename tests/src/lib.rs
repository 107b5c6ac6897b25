//! Integration tests for kazi live in `tests/tests/`.
