"""Night analysis: pure signal-processing steps composed into one pipeline."""

from typing import Final

ALGORITHM_VERSION: Final[str] = "1.6.0"
"""Stored beside every report, so a night can be told apart from one analysed differently.

Bump it whenever a detector constant or logic changes what a report says (major: a figure's
meaning changes; minor: the same figures come out different; patch: only wording of flags).
A refactoring that leaves every report byte-identical (tests/test_result.py) keeps it.
"""
