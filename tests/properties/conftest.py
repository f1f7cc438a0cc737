"""Hypothesis profiles for the properties in this directory.

`ci` (the default): 200 examples per property, derandomized, so every CI run checks the same
inputs and a failure reproduces. `long`: 100,000 per property, random (give
`--hypothesis-seed=N` to repeat a run), with statistics:

    MAILWARDEN_HYPOTHESIS_PROFILE=long nice -n 19 .venv/bin/pytest -q tests/properties \
        --hypothesis-show-statistics --hypothesis-seed=1

(`--hypothesis-profile=long` selects it as well.) MAILWARDEN_HYPOTHESIS_EXAMPLES=N sets another
count for the profile chosen, for a long run that must fit the time a machine has. No example
database: nothing is written to the checkout, and ci inputs stay the same on every machine.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=200, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=100_000, **_COMMON)
settings.load_profile(os.environ.get("MAILWARDEN_HYPOTHESIS_PROFILE", "ci"))
if os.environ.get("MAILWARDEN_HYPOTHESIS_EXAMPLES"):
    examples = int(os.environ["MAILWARDEN_HYPOTHESIS_EXAMPLES"])
    settings.register_profile("counted", settings(), max_examples=examples)
    settings.load_profile("counted")
