"""``signalroute keys create | list | revoke`` against the store the service uses."""

from __future__ import annotations

import pytest

from router.auth.tokens import hash_token
from router.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["keys", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.usefixtures("database")
def test_create_list_and_revoke(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("SIGNALROUTE_DATABASE_URL", database_url)

    code, out, err = run(capsys, "create", "--tenant", "acme", "--name", "checkout")
    assert code == 0
    fields = dict(line.split(":", 1) for line in out.splitlines())
    token = fields["key"].strip()
    key_id = fields["id"].strip()
    assert token.startswith("sr-")
    assert fields["tenant"].strip() == "acme"
    assert "only time the key is shown" in err

    code, out, _ = run(capsys, "list")
    assert code == 0
    assert key_id in out
    assert "acme" in out
    assert "active" in out
    assert "checkout" in out
    assert token not in out
    assert hash_token(token) not in out
    assert token[:10] in out

    code, out, _ = run(capsys, "revoke", key_id)
    assert (code, f"revoked API key {key_id}" in out) == (0, True)
    assert "revoked 20" in run(capsys, "list", "--tenant", "acme")[1]
    assert run(capsys, "list", "--tenant", "beta")[1].strip() == "no API keys for tenant 'beta'"

    code, _, err = run(capsys, "revoke", key_id)
    assert code == 2
    assert "already revoked" in err
    code, _, err = run(capsys, "revoke", "not-an-id")
    assert code == 2
    assert "signalroute: error: no API key 'not-an-id': not a valid id" in err


@pytest.mark.usefixtures("database")
def test_create_grants_the_named_scopes_or_the_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("SIGNALROUTE_DATABASE_URL", database_url)

    code, out, _ = run(
        capsys, "create", "--tenant", "acme", "--scope", "feedback", "--scope", "route"
    )
    assert code == 0
    scoped = dict(line.split(":", 1) for line in out.splitlines())
    assert scoped["scopes"].strip() == "route,feedback"

    code, out, _ = run(capsys, "create", "--tenant", "acme")
    assert code == 0
    default = dict(line.split(":", 1) for line in out.splitlines())
    assert default["scopes"].strip() == "route,feedback,read (the default)"

    listing = run(capsys, "list")[1]
    assert "route,feedback " in listing
    assert "route,feedback,read " in listing

    with pytest.raises(SystemExit):
        main(["keys", "create", "--tenant", "acme", "--scope", "everything"])
    assert "invalid choice: 'everything'" in capsys.readouterr().err
