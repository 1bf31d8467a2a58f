"""The ids and instants the OpenAPI examples share, so one example's flag points at another's patient.

Made up, and never a real person's: every example is checked against its own model
(tests/test_openapi_examples.py)."""

from __future__ import annotations

from pydantic.config import JsonDict

ORGANIZATION_ID = "8f14e45f-ceea-467f-a0e6-5a2c1d9b3c01"
ADMIN_ID = "1679091c-5a88-4faf-8fb2-5a2c1d9b3c02"
PROVIDER_ID = "c9f0f895-fb98-4b91-b5b3-5a2c1d9b3c03"
PATIENT_USER_ID = "45c48cce-2e2d-4fbd-aa1a-5a2c1d9b3c04"
PATIENT_ID = "d3d94468-02a4-4259-b55d-5a2c1d9b3c05"
REGIMEN_ID = "6512bd43-d9ca-4c4d-9e1a-5a2c1d9b3c06"
DOSE_ID = "c20ad4d7-6fe9-4759-aa27-5a2c1d9b3c07"
ANXIETY_ID = "c51ce410-c124-410e-8db5-5a2c1d9b3c08"
SYMPTOM_ID = "aab32389-22bc-4c56-9c3e-5a2c1d9b3c09"
CHECK_IN_ID = "9bf31c7f-f062-436a-96d3-5a2c1d9b3c10"
FLAG_ID = "c74d97b0-1eae-457e-8a6b-5a2c1d9b3c11"
ENDPOINT_ID = "70efdf2e-c9b0-4607-9795-5a2c1d9b3c12"
EVENT_ID = "6f4922f4-5568-461a-8cf1-5a2c1d9b3c13"
DELIVERY_ID = "1f0e3dad-9990-4345-9b7e-5a2c1d9b3c14"
AUDIT_EVENT_ID = "98f13708-2101-4bd2-9e4e-5a2c1d9b3c15"

TIMEZONE = "America/New_York"
DAY = "2026-05-04"
TAKEN_AT = "2026-05-04T08:05:00-04:00"
SCHEDULED_FOR = "2026-05-04T08:00:00-04:00"
RECORDED_AT = "2026-05-04T20:30:00-04:00"
CREATED_AT = "2026-05-04T12:05:02Z"
EARLIER = "2026-04-01T14:00:00Z"
# What the check-in example's face_swelling answer raises (CLINICAL.md 4, anaphylaxis).
ANAPHYLAXIS_REASON = "Reported swelling of the face, lips, tongue or throat."
URGENT_ADVICE = (
    "This can be serious. Call your local emergency number now, or go to the nearest emergency "
    "department. Your care team has been alerted."
)

FLAG: JsonDict = {
    "id": FLAG_ID,
    "patient_id": PATIENT_ID,
    "rule": "anaphylaxis",
    "severity": "urgent",
    "status": "open",
    "reason": ANAPHYLAXIS_REASON,
    "symptom_code": None,
    "evidence": [{"type": "check_in", "id": CHECK_IN_ID, "retracted": False}],
    "observed_at": "2026-05-05T01:30:00Z",
    "last_observed_at": "2026-05-05T01:30:00Z",
    "created_at": "2026-05-05T01:30:04Z",
    "updated_at": "2026-05-05T01:30:04Z",
    "acknowledged_at": None,
    "acknowledged_by": None,
    "resolved_at": None,
    "resolved_by": None,
    "note": None,
    "history": [{"at": "2026-05-05T01:30:04Z", "action": "created", "reason": ANAPHYLAXIS_REASON}],
}
