"""host.json and local.settings.sample.json say what the Functions host and a deployer need."""

import json
from pathlib import Path

import pytest

from shared.settings import SETTINGS_DOC, Settings

ROOT = Path(__file__).parents[2]


def test_host_json_uses_the_v4_bundle_and_names_the_hub() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert host["extensions"]["durableTask"]["hubName"] == "pgha"


def test_sample_settings_hold_every_setting() -> None:
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert "AzureWebJobsStorage" in values
    assert set(SETTINGS_DOC) <= set(values)
    optional = {"PGHA_ALERT_CALLBACK_URL", "PGHA_FUNCTION_KEY"}  # unset means off / made on first start
    optional |= {k for k, doc in SETTINGS_DOC.items() if doc.startswith("aks:")}  # filled in per deployment
    assert all(isinstance(v, str) and (v or k in optional) for k, v in values.items())


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHA_READY_TIMEOUT_SECONDS", "42")
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.delenv("PGHA_STORAGE_CONNECTION", raising=False)
    settings = Settings.from_env()
    assert settings.ready_timeout_seconds == 42
    assert settings.storage_connection == "UseDevelopmentStorage=true"
    assert settings.run_options().dump()["readyTimeoutSeconds"] == 42  # as the run's input carries it
    monkeypatch.setenv("PGHA_POLL_SECONDS", "0.25")
    assert Settings.from_env().poll_seconds == 0.25
    monkeypatch.setenv("PGHA_POLL_SECONDS", "soon")
    with pytest.raises(ValueError, match="PGHA_POLL_SECONDS must be a number"):
        Settings.from_env()
    monkeypatch.setenv("PGHA_POLL_SECONDS", "0")
    with pytest.raises(ValueError, match=r"between 0\.1 and 3600"):
        Settings.from_env()
    monkeypatch.delenv("PGHA_POLL_SECONDS")
    monkeypatch.setenv("PGHA_ACTIVITY_ATTEMPTS", "0")
    with pytest.raises(ValueError, match="PGHA_ACTIVITY_ATTEMPTS must be between 1 and 86400"):
        Settings.from_env()


def test_readme_documents_every_setting_and_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in SETTINGS_DOC:
        assert f"`{name}`" in readme, name
    assert "./pgha demo" in readme and "./pgha test" in readme
    assert "./pgha test" in (ROOT / ".ci" / "run").read_text().replace("exec ", "")


def test_the_devhost_key_is_made_once_and_never_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devhost.keys import function_key, key_file

    monkeypatch.delenv("PGHA_FUNCTION_KEY", raising=False)
    first = function_key(tmp_path)
    assert len(first) >= 40 and function_key(tmp_path) == first
    assert oct(key_file(tmp_path).stat().st_mode & 0o777) == "0o600"
    key_file(tmp_path).write_text("")  # truncated: a new key, not an open door
    assert function_key(tmp_path) not in ("", first)


def test_devhost_logging_is_quiet_and_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """The Azure SDK's HTTP dumps only at debug; no line at any level carries a key or a signature."""
    import logging

    from shared.logs import configure

    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogger("azure").level)
    root.handlers = [logging.StreamHandler()]
    try:
        configure("info")
        assert not logging.getLogger("azure.core.pipeline.policies.http_logging_policy").isEnabledFor(logging.INFO)
        logging.getLogger("pgha.test").info("reached https://a.blob.core.windows.net/c?sv=1&sig=s3cr3t&se=2 "
                                            "with AccountKey=k3y; and ?code=f00")
        try:
            raise ValueError("connection failed: AccountKey=tr4c3d; and {'x-functions-key': 'k3yd1ct'}")
        except ValueError:
            logging.getLogger("pgha.test").exception("a timer failed")
        logging.getLogger("pgha.test").warning("%s and %s", "one")  # a bad call: logging's own error path
        configure("debug")
        assert logging.getLogger("azure.core").isEnabledFor(logging.DEBUG)
        with pytest.raises(ValueError, match="PGHA_LOG_LEVEL"):
            configure("loud")
    finally:
        root.setLevel(saved[0])
        root.handlers = saved[1]
        logging.getLogger("azure").setLevel(saved[2])
    err = capsys.readouterr().err
    assert "reached" in err and "s3cr3t" not in err and "k3y" not in err and "f00" not in err
    assert "a timer failed" in err and "ValueError" in err and "tr4c3d" not in err and "k3yd1ct" not in err
