"""Flags for the care team: the rules of CLINICAL.md 4 (pure, in `services.clinical.rules`) applied to
what the rules need to see (`flag_history`), one open flag per patient, rule and symptom with its
lifecycle (`lifecycle`), and the rules that depend on time passing (`time_rules`)."""
