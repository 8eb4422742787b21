"""Vocabularies of the trace set and its tables: one home for every controlled word.

Every module that checks or lists a modality, nerve or side imports it from here. The words are
those of the interchange contract (``formats/trace-set.md``); ``mep`` (a transcranial motor
evoked potential, measured with the MEP preset) is an ncsproc extension of the contract's
``modality`` vocabulary.
"""

from __future__ import annotations

NERVES = (
    "median",
    "ulnar",
    "peroneal",
    "tibial",
    "sural",
    "radial",
    "superficial_peroneal",
    "musculocutaneous",
    "axillary",
    "femoral",
    "facial",
    "plantar",
    "lateral_antebrachial_cutaneous",
)
SIDES = ("L", "R")

MODALITIES = ("motor", "sensory", "fwave", "mep")
"""Trace modalities: motor (CMAP), sensory (SNAP), fwave (F-wave series), mep (TMS MEP)."""
