"""Schema fuzzing: every operation of the gateway's own OpenAPI document, called in-process with
generated valid and invalid input, as an admin and as a viewer; then call sequences that follow
the document's links (the stateful phase).

Every response must: not be a 5xx, use a documented status code and content type, match the
documented schema and headers, reject what the schema forbids (4xx) and accept what it allows.
Examples are bounded and derandomized, so a run is quick and the same on every machine.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi import checks

from tests.fuzz.conftest import FuzzGateways

# Operations that change the gateway's own configuration or the caller's session: they are sent
# to the scratch gateway (see conftest) and left out of the call sequences.
SCRATCH_OPERATIONS = frozenset({"update_config", "logout"})
# The stream never ends, so a sequence would wait on it for the read timeout; it is fuzzed alone.
SEQUENCE_EXCLUDED = SCRATCH_OPERATIONS | {"stream_events"}

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.positive_data_acceptance,
]

COMMON = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
}
PER_OPERATION = hypothesis.settings(
    max_examples=6, phases=[Phase.explicit, Phase.generate], **COMMON
)
# No shrinking: the gateway keeps its state between examples, so a replay is not the same run.
SEQUENCES = hypothesis.settings(
    max_examples=5, stateful_step_count=6, phases=[Phase.generate], **COMMON
)


ACCEPTED = ["2xx", "401", "403", "404", "409", "429"]
# Rules JSON Schema cannot state, so valid-looking input may still be refused with 400:
# an API key's `expires_at` must lie in the future; an imported text must hold a valid document
# (`contentSchema` is documented, but generators make arbitrary JSON text).
TIME_AND_CONTENT_RULES = [
    {
        "include-operation-id": operation_id,
        "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}},
    }
    for operation_id in ("create_api_key", "import_settings")
]


def _schema(app: FastAPI, headers: dict[str, str]) -> BaseSchema:
    config = SchemathesisConfig.from_dict(
        {
            "headers": headers,
            "max-stream-events": 1,
            "operations": TIME_AND_CONTENT_RULES,
            "request-timeout": 5,
            "generation": {
                "mode": "all",
                "deterministic": True,
                "with-security-parameters": False,  # the role's own credentials, always
            },
        }
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


@pytest.fixture(params=["admin", "viewer"])
def fuzz_schema(request: pytest.FixtureRequest, fuzz_gateways: FuzzGateways) -> BaseSchema:
    return _schema(fuzz_gateways.shared, fuzz_gateways.callers.headers(request.param))


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@PER_OPERATION
def test_every_operation_keeps_its_documented_contract(
    case: Any, fuzz_gateways: FuzzGateways
) -> None:
    operation_id = case.operation.definition.raw.get("operationId")
    scratch = operation_id in SCRATCH_OPERATIONS
    app = fuzz_gateways.scratch if scratch else fuzz_gateways.shared
    case.call_and_validate(app=app, checks=CHECKS)


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_linked_call_sequences_keep_the_contract(role: str, fuzz_gateways: FuzzGateways) -> None:
    linked = _schema(fuzz_gateways.shared, fuzz_gateways.callers.headers(role)).exclude(
        operation_id=list(SEQUENCE_EXCLUDED)
    )

    class Sequences(linked.as_state_machine()):  # type: ignore[misc]
        """Each scenario runs on a new gateway: the same steps must meet the same state."""

        def setup(self) -> None:
            self.app = fuzz_gateways.new(quiet=True)

        def call(self, case: Any, **kwargs: Any) -> Any:
            return case.call(app=self.app, **kwargs)

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            kwargs.pop("additional_checks", None)
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)

    Sequences.run(settings=SEQUENCES)
