"""The registry export: one pseudonymous row per exam for the IMAGiNe registry.

From the output folder of ``ncsproc extract`` (``exams.csv``, ``nerves.csv``,
``provenance.json``):

* :func:`build_table` - the wide table of the declared variables (``variables.toml``);
* :func:`export` - that table as CSV and/or Parquet;
* :func:`push` - into a registry database (SQLite by default, PostgreSQL for a server), with
  a versioned schema (:func:`migrate`), one transaction per exam and an upsert keyed by
  (centre, subject pseudonym, exam id); :func:`pull` reads it back as a DataFrame;
* :func:`write_dictionary` - the data dictionary (REDCap CSV and JSON).

Everything needs the centre's pseudonym key (:func:`ncsproc.privacy.pseudonymizer_from`);
without it the registry refuses to run. Full description: ``formats/registry.md``.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "DEFAULT_DB": "ncsproc.registry.db",
    "PROVENANCE_FILE": "ncsproc.registry.provenance",
    "Declarations": "ncsproc.registry.variables",
    "Provenance": "ncsproc.registry.provenance",
    "PushReport": "ncsproc.registry.db",
    "RegistryConfig": "ncsproc.registry.table",
    "RegistryError": "ncsproc.registry.variables",
    "Variable": "ncsproc.registry.variables",
    "WideTable": "ncsproc.registry.table",
    "build_table": "ncsproc.registry.table",
    "check_schema": "ncsproc.registry.migrations",
    "connect": "ncsproc.registry.db",
    "dictionary_json": "ncsproc.registry.dictionary",
    "dictionary_rows": "ncsproc.registry.dictionary",
    "display_url": "ncsproc.registry.db",
    "export": "ncsproc.registry.api",
    "file_sha256": "ncsproc.registry.provenance",
    "load_config": "ncsproc.registry.table",
    "load_variables": "ncsproc.registry.variables",
    "migrate": "ncsproc.registry.migrations",
    "list_migrations": "ncsproc.registry.migrations",
    "pull": "ncsproc.registry.db",
    "push": "ncsproc.registry.api",
    "read_provenance": "ncsproc.registry.provenance",
    "read_wide": "ncsproc.registry.files",
    "schema_version": "ncsproc.registry.migrations",
    "settings_digest": "ncsproc.registry.provenance",
    "write_dictionary": "ncsproc.registry.dictionary",
    "write_provenance": "ncsproc.registry.provenance",
    "write_wide": "ncsproc.registry.files",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ncsproc.registry' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
