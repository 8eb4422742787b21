"""Vocabularies of the trace set and its tables: one home for every controlled word.

Every module that checks or lists a modality, nerve, side, trace status, pattern, evidence
status or stimulation site imports it from here. The words are
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

STATUS_OK = "ok"
STATUS_NO_RESPONSE = "no_response"
STATUSES = (
    STATUS_OK,
    STATUS_NO_RESPONSE,
    "saturated",
    "no_baseline",
    "nonfinite",
    "too_short",
    "window_edge",
)
"""Trace statuses of the measures (the ``status`` column of ``responses.csv``), in code order
(``ncsproc.kernels.STATUS_NAMES`` maps the kernels' codes to them; a test checks they agree).
Values exist only for ``ok``."""

PATTERNS = ("normal", "distal_demyelinating", "cidp_like", "axonal", "not_classifiable")
"""The contract's pattern vocabulary (``exams.csv`` ``pattern``, interchange contract section 4)."""

EVIDENCE_STATUSES = ("C", "S", "U", "P")
"""Tags of a number's evidence in the data files: confirmed, secondary source, unconfirmed,
proposal (``formats/features.md``)."""
EVIDENCE_MEANINGS = {
    "C": "confirmed",
    "S": "secondary source only",
    "U": "unconfirmed",
    "P": "proposal",
}
"""What each evidence status tag means (the report's badges)."""

SITE_RANK: dict[str, int] = {
    # upper limb, distal to proximal
    "digit": 0,
    "palm": 0,
    "wrist": 1,
    "forearm": 2,
    "below elbow": 3,
    "elbow": 4,
    "above elbow": 5,
    "arm": 6,
    "axilla": 7,
    "erb": 8,
    "erb's point": 8,
    "supraclavicular": 8,
    # lower limb
    "ankle": 1,
    "calf": 2,
    "mid calf": 2,
    "below fibular head": 3,
    "fibular head": 4,
    "above fibular head": 5,
    "knee": 6,
    "popliteal fossa": 6,
    "thigh": 7,
}
"""Fallback anatomical order of stimulation sites (distal = small) when distances are unknown."""
