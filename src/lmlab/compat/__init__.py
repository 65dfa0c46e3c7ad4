"""Private APIs of the libraries lmlab builds on, one module per library, each with the version it was checked
against. tests/unit/compat/test_compat.py fails when an installed version differs or a name is gone: re-check the uses
listed in the module, then update its CHECKED_VERSION."""
