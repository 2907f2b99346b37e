"""Attack: a deployment that kept a placeholder internal token (issue 12.9).

``INTERNAL_TOKEN`` guards every ``/internal`` route; a placeholder there is a published password, so
it is refused in every environment except development — including Terraform's SSM placeholder.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.auth.config import AuthSettings
from services.common.config import CommonSettings, Environment


@pytest.mark.parametrize("environment", [Environment.TEST, Environment.PRODUCTION])
@pytest.mark.parametrize("token", ["dev-internal-token", "CHANGE_ME", "change-me", " ChangeMe ", "", "secret"])
def test_placeholder_internal_token_refused_outside_development(environment: Environment, token: str) -> None:
    with pytest.raises(ValidationError, match="INTERNAL_TOKEN"):
        CommonSettings(environment=environment, internal_token=token)


def test_default_internal_token_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="INTERNAL_TOKEN"):
        CommonSettings(environment=Environment.TEST)  # the built-in default is a placeholder too


def test_development_keeps_its_defaults_and_real_tokens_pass() -> None:
    assert CommonSettings(environment=Environment.DEVELOPMENT).internal_token == "dev-internal-token"
    assert CommonSettings(environment=Environment.TEST, internal_token="k8s-generated-" + "x" * 32)


def test_terraform_placeholder_refused_for_every_secret() -> None:
    with pytest.raises(ValidationError, match="AUTH_SECRET_KEY"):
        AuthSettings(environment=Environment.PRODUCTION, secret_key="CHANGE_ME")
