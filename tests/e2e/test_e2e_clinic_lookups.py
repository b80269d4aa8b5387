"""The clinic end to end, over real HTTP: a `stormgen run` server on a SQLite file.

A lookup: a doctor cannot prescribe a drug the patient is allergic to, as the Care
context's `Allergies` view (fed by the Registry's published events) knows it. A removal
from a list: withdrawing an allergy (a list comprehension) takes it out of the patient's
record and, once the view has caught up, out of the guard's way. A fan-out: closing the
visit sends one order to the pharmacy per drug prescribed, each answered by the fake
pharmacy and counted once in the `Dispensary` view.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from e2e_support import REPO, STORMGEN, Server, wait_for

from stormgen.runtime import command_id

CLINIC = REPO / "examples" / "clinic.storm"
TOKENS = "r1=Receptionist,d1=Doctor,o1=operator"
DESK = {"Authorization": "Bearer r1"}
DOCTOR = {"Authorization": "Bearer d1"}
OPERATOR = {"Authorization": "Bearer o1"}


class ClinicServer(Server):
    def command(self) -> list[str]:
        options = ["--port", str(self.port), "--store", self.store, *self.args]
        return [*STORMGEN, "run", str(CLINIC), *options]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClinicServer]:
    workdir = tmp_path_factory.mktemp("clinic")
    running = ClinicServer(workdir, f"sqlite:///{workdir / 'events.db'}", TOKENS)
    running.start()
    yield running
    running.stop()


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def allergies_seen(c: httpx.Client, mrn: str, expected: list[str]) -> bool:
    response = c.get(f"/care/views/allergies/{mrn}", headers=DOCTOR)
    return response.status_code == 200 and response.json()["allergies"] == expected


def test_a_lookup_a_removal_and_a_fan_out(server: ClinicServer) -> None:
    mrn = "MRN-7"
    with server.client() as c:
        patient = {"mrn": mrn, "full_name": "Ada Lovelace", "born_on": "1990-12-10"}
        ok(c.post("/registry/patient-record/register-patient", json=patient, headers=DESK))
        record = f"/registry/patient-record/{mrn}"
        ok(c.post(f"{record}/note-allergy", json={"allergy": "Penicillin"}, headers=DOCTOR))
        booked = {"mrn": mrn, "starts_at": "2099-01-05T09:30:00Z"}
        appointment = ok(c.post("/scheduling/appointment/book", json=booked, headers=DESK))["id"]
        ok(c.post(f"/scheduling/appointment/{appointment}/check-in", json={}, headers=DESK))
        # the policy opens the visit (its id is the appointment's); Care learns the allergy
        visit = f"/care/visit/{appointment}"
        wait_for(lambda: c.get(visit, headers=DOCTOR).status_code == 200)
        wait_for(lambda: allergies_seen(c, mrn, ["penicillin"]))

        def prescribe(drug: str) -> httpx.Response:
            dose = {"drug": drug, "milligrams": "250"}
            return c.post(f"{visit}/prescribe", json={"dose": dose}, headers=DOCTOR)

        refused = prescribe("Penicillin")  # the lookup: Allergies[mrn] has it
        assert refused.status_code == 409, refused.text
        assert refused.json()["message"] == "the patient is allergic to this drug"
        ok(prescribe("Ibuprofen"))

        # the removal: `[a for a in allergies if a != noted]`
        withdrawn = ok(
            c.post(f"{record}/withdraw-allergy", json={"allergy": "PENICILLIN"}, headers=DOCTOR)
        )
        assert withdrawn["events"][0]["data"]["allergies"] == []
        assert ok(c.get(record, headers=DOCTOR))["state"]["allergies"] == []
        wait_for(lambda: allergies_seen(c, mrn, []))
        ok(prescribe("Penicillin"))  # the view caught up: nothing in the way now

        # the fan-out: one Dispense per drug prescribed, answered by the fake pharmacy
        closed = ok(c.post(f"{visit}/close-visit", json={}, headers=DOCTOR))
        drugs = [d["drug"] for d in closed["events"][0]["data"]["prescriptions"]]
        assert drugs == ["Ibuprofen", "Penicillin"]
        server.wait_idle(c)
        dispensary = ok(c.get(f"/care/views/dispensary/{mrn}", headers=DOCTOR))
        assert sorted(dispensary["drugs"]) == ["Ibuprofen", "Penicillin"]
        # each command sent once, its id from the fan-out's line and the drug's index
        log = ok(c.get("/events", params={"limit": 1000}, headers=OPERATOR))["events"]
        visit_closed = next(e for e in log if e["type"] == "Care.VisitClosed")
        sent = [e for e in log if e["type"] == "$CommandSent" and e["stream"] == "Care.Pharmacy"]
        policy = "Care.DispenseEachDrug"
        ids = [str(command_id(policy, visit_closed["id"], f"0.{i}")) for i in range(2)]
        assert [e["id"] for e in sent] == ids
        assert [e["data"]["drug"] for e in sent] == ["Ibuprofen", "Penicillin"]
