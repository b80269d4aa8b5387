"""Bearer tokens: parsing the configuration and the loopback rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormgen.runtime.http import TokenConfigError, load_tokens, parse_tokens
from stormgen.runtime.http.auth import is_loopback


def test_parse_tokens_from_the_environment_syntax() -> None:
    tokens = parse_tokens("t1=Customer, t2=Barista,t3=PaymentGateway")
    assert tokens.principal("t1") == "Customer"
    assert tokens.principal("t2") == "Barista"
    assert tokens.principal("t3") == "PaymentGateway"
    assert tokens.principal("t4") is None
    assert tokens.names() == {"Customer", "Barista", "PaymentGateway"}
    assert not tokens.open


def test_empty_configuration_is_open_mode() -> None:
    assert parse_tokens("").open
    assert load_tokens(environ={}).open


def test_bad_entries_are_refused_with_their_number() -> None:
    with pytest.raises(TokenConfigError, match="entry 2"):
        parse_tokens("t1=Customer,nonsense")
    with pytest.raises(TokenConfigError, match="twice"):
        parse_tokens("t1=Customer,t1=Barista")


def test_tokens_file_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# who may call\nsecret-a=Customer\n\nsecret-b = Barista\n")
    tokens = load_tokens(environ={"STORMGEN_TOKENS_FILE": str(path)})
    assert tokens.principals == {"secret-a": "Customer", "secret-b": "Barista"}
    assert load_tokens(tokens_file=str(path), environ={}).principal("secret-b") == "Barista"


def test_missing_tokens_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(TokenConfigError, match="cannot read the tokens file"):
        load_tokens(tokens_file=str(tmp_path / "nope"), environ={})


def test_environment_variable_is_read() -> None:
    tokens = load_tokens(environ={"STORMGEN_TOKENS": "abc=Barista"})
    assert tokens.principal("abc") == "Barista"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
