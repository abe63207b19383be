"""``hub deploy DIR`` against a real server on loopback: all valid -> saved; one invalid -> none."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import uvicorn
from click.testing import CliRunner

from hub.api.app import create_app
from hub.cli import main
from hub.store.api_store import ApiStore
from hub.testing import make_engine
from tests.service.conftest import HELLO
from tests.service.test_openapi_fuzz import _free_port


def test_deploy_folder(tmp_path: Path) -> None:
    engine = make_engine(home=tmp_path / "home")
    key = ApiStore(engine.store).create_key("deployer", ["admin"])[1]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        folder = tmp_path / "flows"
        folder.mkdir()
        (folder / "hello.yaml").write_text(HELLO)
        url = f"http://127.0.0.1:{port}"
        runner = CliRunner()
        ok = runner.invoke(main, ["deploy", str(folder), "--url", url, "--key", key])
        assert ok.exit_code == 0, ok.output
        assert "demo.hello" in ok.output and "new revision" in ok.output
        assert "unchanged" in runner.invoke(main, ["deploy", str(folder), "--url", url, "--key", key]).output

        (folder / "bad.yaml").write_text("id: bad\ntasks:\n  - {id: a, type: nope}\n")
        (folder / "hello.yaml").write_text(HELLO.replace("hi {{", "yo {{"))
        bad = runner.invoke(main, ["deploy", str(folder), "--url", url, "--key", key])
        assert bad.exit_code == 1 and "bad.yaml:3" in bad.output and "unknown task type 'nope'" in bad.output
        assert engine.store.get_flow_source("demo", "hello")[0] == 1  # nothing saved

        denied = runner.invoke(main, ["deploy", str(folder), "--url", url])
        assert denied.exit_code == 1 and "API key is required" in denied.output
    finally:
        server.should_exit = True
        thread.join(10)


def test_deploy_of_a_file_that_is_not_utf8_is_a_message(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "latin1.yaml").write_bytes(b'id: x\ndescription: "caf\xe9"\ntasks: []\n')
    result = CliRunner().invoke(main, ["deploy", str(folder), "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "latin1.yaml: cannot be read as UTF-8 text" in result.output and "internal error" not in result.output
