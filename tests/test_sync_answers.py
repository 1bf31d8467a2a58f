"""A sync batch answers each entry as its own POST would: the flags it raised (or, retried, the flags
its first write raised) and the patient-facing advice, plus the batch's highest advice on top, so an app
that sent a red-flag answer offline shows "call your emergency number" the moment the batch is answered.
And the request is documented as a union discriminated by `type`, while each entry is still judged
alone (one bad entry gets its own 422; the rest are stored)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from models.entry_schemas import RejectedEntry, SyncRequest
from models.flags import Severity
from services.clinical.rules import ADVICE
from services.settings import Settings
from tests.entry_helpers import dose, new_id
from tests.flag_helpers import at, day
from tests.test_write_path_budget import statements
from tests.world import World

URGENT, HIGH = ADVICE[Severity.urgent], ADVICE[Severity.high]
KINDS = {
    "dose": "DoseEntry",
    "anxiety": "AnxietyEntry",
    "symptom": "SymptomEntry",
    "check_in": "CheckInEntry",
}


def _entry(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "patient_id": "me", **body}


def _check_in(on: int = 0, **fields: Any) -> dict[str, Any]:
    return {"id": new_id(), "date": day(on).isoformat(), "submitted_at": at(day(on), 22), **fields}


async def _sync(client: httpx.AsyncClient, headers: dict[str, str], entries: list[Any]) -> dict[str, Any]:
    response = await client.post("/v1/sync", headers=headers, json={"entries": entries})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert [r["id"] for r in answer["results"]] == [e.get("id") for e in entries]
    return answer


def _rules(result: dict[str, Any]) -> list[str]:
    return [f["rule"] for f in result["flags"]]


async def test_a_synced_hard_to_wake_answer_carries_the_urgent_flag_and_advice(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    check_in = _check_in(red_flags={"hard_to_wake": True})
    answer = await _sync(client, patient.headers, [_entry("check_in", check_in)])
    [result] = answer["results"]
    assert result["status"] == 201 and result["error"] is None
    assert _rules(result) == ["respiratory_depression"]
    [flag] = result["flags"]
    assert flag["severity"] == "urgent" and flag["patient_id"] == str(patient.patient_id)
    assert {"type": "check_in", "id": check_in["id"], "retracted": False} in flag["evidence"]
    assert result["advice"] == answer["advice"] == URGENT
    # The same flag the provider's queue shows: the flag objects a single entry's answer carries.
    queue = (await client.get("/v1/flags", headers=world["provider_a"].headers)).json()["items"]
    assert [f["id"] for f in queue] == [flag["id"]] and queue[0].keys() >= flag.keys()


async def test_a_mixed_batch_answers_each_entry_alone_and_its_retry_the_same(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    entries = [
        _entry("dose", dose(taken_at=at(day(0), 8))),  # plain: no flag
        _entry("dose", dose(taken_at=at(day(0), 9), dose_mg="three hundred")),  # malformed
        _entry("check_in", _check_in(red_flags={"hard_to_wake": True, "fever": False})),
    ]
    first = await _sync(client, patient.headers, entries)
    assert [r["status"] for r in first["results"]] == [201, 422, 201]
    plain, bad, urgent = first["results"]
    assert (plain["flags"], plain["advice"]) == ([], None)
    assert (bad["flags"], bad["advice"]) == ([], None)
    assert ["dose_mg"] in [e["loc"] for e in bad["error"]["errors"]]
    assert _rules(urgent) == ["respiratory_depression"] and urgent["advice"] == URGENT
    assert first["advice"] == URGENT

    # The answer was lost: the phone sends the batch again. Retries answer as their first write did.
    again = await _sync(client, patient.headers, entries)
    assert [r["status"] for r in again["results"]] == [200, 422, 200]
    assert [(r["flags"], r["advice"]) for r in again["results"][:2]] == [([], None), ([], None)]
    retried = again["results"][2]
    assert [f["id"] for f in retried["flags"]] == [f["id"] for f in urgent["flags"]]
    assert retried["advice"] == again["advice"] == URGENT


async def test_a_synced_retry_of_a_single_entry_answers_as_its_single_retry(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    body = _check_in(red_flags={"breathing_trouble": True})
    path = f"/v1/patients/{patient.patient_id}/check-ins"
    assert (await client.post(path, headers=patient.headers, json=body)).status_code == 201
    single = (await client.post(path, headers=patient.headers, json=body)).json()
    [result] = (await _sync(client, patient.headers, [_entry("check_in", body)]))["results"]
    assert result["status"] == 200
    assert result["flags"] == single["flags"] and result["advice"] == single["advice"] == URGENT


async def test_flags_reach_every_entry_in_their_evidence_and_a_check_in_through_its_parts(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    big = [_entry("dose", dose(taken_at=at(day(0), hour), dose_mg=1200)) for hour in (8, 14, 20)]
    # A check-in whose dose part brings the day above the maximum: the flag rests on the part's id.
    part_id = new_id()
    check_in = _check_in(doses=[{"id": part_id, "taken_at": at(day(0), 21), "dose_mg": 1200}])
    quiet = _entry("dose", dose(taken_at=at(day(1), 8), dose_mg=300))
    batch = [*big, _entry("check_in", check_in), quiet]
    answer = await _sync(client, patient.headers, batch)
    results = answer["results"]
    assert [r["status"] for r in results] == [201] * 5
    flag_ids = {f["id"] for r in results[:4] for f in r["flags"]}
    assert len(flag_ids) == 1 and all(_rules(r) == ["dose_above_max"] for r in results[:4])
    [flag] = results[3]["flags"]
    assert {e["id"] for e in flag["evidence"]} >= {e["id"] for e in big} | {part_id}
    assert (results[4]["flags"], results[4]["advice"]) == ([], None)
    advice = ADVICE[Severity(flag["severity"])]
    assert all(r["advice"] == advice for r in results[:4]) and answer["advice"] == advice
    # Retried, the check-in finds its flag through its part's id again (derived ids: the same rows).
    again = await _sync(client, patient.headers, batch)
    assert [r["status"] for r in again["results"]] == [200] * 5
    assert [[f["id"] for f in r["flags"]] for r in again["results"]] == [[flag["id"]]] * 4 + [[]]
    assert again["advice"] == advice


async def test_the_batch_advice_is_the_highest_and_refused_entries_carry_none(
    client: httpx.AsyncClient, world: World
) -> None:
    patient, other = world["patient_a"], world["patient_b"]
    entries = [
        _entry("check_in", _check_in(red_flags={"fall": True})),  # high
        {"type": "check_in", "patient_id": str(other.patient_id), **_check_in(red_flags={"seizure": True})},
        _entry("check_in", _check_in(1, red_flags={"seizure": True})),  # urgent
    ]
    answer = await _sync(client, patient.headers, entries)
    fall, not_theirs, seizure = answer["results"]
    assert (fall["status"], _rules(fall), fall["advice"]) == (201, ["fall"], HIGH)
    assert (not_theirs["status"], not_theirs["flags"], not_theirs["advice"]) == (404, [], None)
    assert (seizure["status"], _rules(seizure), seizure["advice"]) == (201, ["seizure"], URGENT)
    assert answer["advice"] == URGENT
    quiet = await _sync(client, patient.headers, [_entry("dose", dose())])
    assert quiet["advice"] is None and quiet["results"][0]["flags"] == []


@pytest.mark.one_database
async def test_retried_entries_read_their_flags_once_per_patient_not_once_per_entry(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]

    async def retry_count(size: int) -> int:
        batch = [_entry("check_in", _check_in(n, red_flags={"fall": True})) for n in range(size)]
        await _sync(client, patient.headers, batch)
        with statements(app) as seen:
            answer = await _sync(client, patient.headers, batch)
        assert {r["status"] for r in answer["results"]} == {200}
        assert all(_rules(r) == ["fall"] and r["advice"] == HIGH for r in answer["results"])
        return len(seen)

    assert await retry_count(2) == await retry_count(20)


def test_the_sync_request_is_documented_as_a_union_discriminated_by_type(settings: Settings) -> None:
    document = create_app(settings).openapi()
    schemas = document["components"]["schemas"]
    body = document["paths"]["/v1/sync"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    request = schemas[body["$ref"].rsplit("/", 1)[-1]]
    entries = request["properties"]["entries"]
    assert entries["maxItems"] == 500
    items = entries["items"]
    mapping = {kind: f"#/components/schemas/{name}" for kind, name in KINDS.items()}
    assert items["discriminator"] == {"propertyName": "type", "mapping": mapping}
    assert sorted(m["$ref"] for m in items["oneOf"]) == sorted(mapping.values())
    for kind, name in KINDS.items():
        member = schemas[name]
        assert {"type", "patient_id", "id"} <= set(member["required"]), name
        assert member["properties"]["type"]["const"] == kind
        assert member["additionalProperties"] is False
    assert schemas["DoseEntry"]["properties"]["dose_mg"]["type"] == "number"
    answer = schemas["SyncAnswer"]
    assert {"results", "advice"} <= set(answer["required"])
    result = schemas["SyncResult"]
    assert {"flags", "advice"} <= set(result["required"])
    assert result["properties"]["flags"]["items"] == {"$ref": "#/components/schemas/FlagPublic"}


def test_the_documented_example_is_a_batch_of_valid_entries_and_a_bad_one_is_only_rejected() -> None:
    # The lenient model would take a broken example without a word: each example entry must be a member.
    for example in SyncRequest.model_json_schema()["examples"]:
        parsed = SyncRequest.model_validate(example)
        assert not [e for e in parsed.entries if isinstance(e, RejectedEntry)]
    mixed = SyncRequest.model_validate(
        {"entries": [1, _entry("dose", dose(dose_mg="three hundred")), _entry("dose", dose())]}
    )
    assert [type(e).__name__ for e in mixed.entries] == ["RejectedEntry", "RejectedEntry", "DoseEntry"]
