"""API tests against a real `jobgate serve` process.

A package (unlike the other test folders) so that its conftest is imported as
`api.conftest` and does not shadow `tests/conftest.py`, which other tests import as
`conftest`.
"""
