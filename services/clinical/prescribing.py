"""The checks when a regimen is written (CLINICAL.md 4, prescribing safety, label table 1), as pure
functions. They say which limit a schedule exceeds; they never propose a dose."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.clinical.rules import LABEL_MAX_DAILY_MG, label_max_daily_mg

# CLINICAL.md 4, word for word.
RENAL_MAXIMUM_UNKNOWN = "creatinine clearance unknown: the label's renal maximums cannot be applied"
# CLINICAL.md 3: respiratory risk and the renal warning both start at 65.
OLDER_ADULT_AGE = 65


@dataclass(frozen=True)
class PrescribingCheck:
    """What the checks found: `refusals` (each refuses the schedule) and `warnings` (shown with it)."""

    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def age_in(year: int, birth_year: int | None) -> int | None:
    """The age a patient reaches in `year` (only the birth year is recorded)."""
    return None if birth_year is None else year - birth_year


def check_schedule(
    daily_mg: float,
    max_daily_mg: float | None,
    override_reason: str | None,
    creatinine_clearance_ml_min: float | None,
    age: int | None,
) -> PrescribingCheck:
    """A schedule's daily total against the label maximum for the patient's creatinine clearance and the
    label's 3600 mg (refused unless the prescriber gave `override_reason`), and against the regimen's own
    `max_daily_mg` (always refused); a warning for a patient of 65 or over with no clearance on record."""
    refusals = []
    label_max = label_max_daily_mg(creatinine_clearance_ml_min)
    if override_reason is None:
        if daily_mg > LABEL_MAX_DAILY_MG:
            refusals.append(
                f"the daily total of {daily_mg:g} mg exceeds the label maximum of {LABEL_MAX_DAILY_MG} mg "
                "a day; a schedule above it needs override_reason"
            )
        elif daily_mg > label_max:
            refusals.append(
                f"the daily total of {daily_mg:g} mg exceeds the label maximum of {label_max} mg a day for "
                f"a creatinine clearance of {creatinine_clearance_ml_min:g} mL/min; a schedule above it "
                "needs override_reason"
            )
    if max_daily_mg is not None and daily_mg > max_daily_mg:
        refusals.append(
            f"the daily total of {daily_mg:g} mg exceeds the regimen's own max_daily_mg "
            f"of {max_daily_mg:g} mg"
        )
    warnings = []
    if creatinine_clearance_ml_min is None and age is not None and age >= OLDER_ADULT_AGE:
        warnings.append(RENAL_MAXIMUM_UNKNOWN)
    return PrescribingCheck(refusals, warnings)


def exceeds_label_maximum(daily_mg: float, creatinine_clearance_ml_min: float | None) -> bool:
    """Whether a schedule needs an override: above the label maximum for the clearance, or 3600 mg."""
    return daily_mg > min(LABEL_MAX_DAILY_MG, label_max_daily_mg(creatinine_clearance_ml_min))
