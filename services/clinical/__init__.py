"""Clinical content from CLINICAL.md as pure data and functions: catalog, composite grading, GAD-7."""
