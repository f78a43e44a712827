"""The dashboard's assets as a browser gets them: served from the package, every module it
imports present, nothing from another host, and the page's security headers on each."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import httpx

from gateway.ui import STATIC
from tests.support.gateway import write_configs
from tests.support.inprocess import app_client, inprocess_settings

PROJECT = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"""^\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']""", re.M)
REFERENCE = re.compile(r"""(?:src|href)="([^"]+)\"""")


async def _get_all(client: httpx.AsyncClient, start: str) -> dict[str, httpx.Response]:
    """The page and everything it loads, following <script>/<link> and module imports."""
    seen: dict[str, httpx.Response] = {}
    pending = [start]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        response = await client.get(path)
        seen[path] = response
        base = path.rsplit("/", 1)[0] + "/"
        if path.endswith("/"):
            found = REFERENCE.findall(response.text)
        elif path.endswith(".js") and "/vendor/" not in path:
            found = IMPORT.findall(response.text)
        else:
            found = []
        for ref in found:
            if ref.startswith(("data:", "/docs", "#")):
                continue
            assert not re.match(r"^[a-z]+://|^//", ref), f"{path} loads {ref} from another host"
            pending.append(str(Path(base + ref).resolve()) if not ref.startswith("/") else ref)
    return seen


async def test_the_page_and_every_module_it_imports_are_served_with_the_security_headers(tmp_path: Path) -> None:
    configs = write_configs(tmp_path / "configs")
    settings = inprocess_settings(tmp_path / "gw", config_dir=configs, roots=tmp_path)
    async with app_client(settings) as client:
        root = await client.get("/", follow_redirects=False)
        assert root.status_code == 307 and root.headers["location"] == "/ui/"
        served = await _get_all(client, "/ui/")
    scripts = {p for p in served if p.endswith(".js")}
    # the page, its stylesheet, the two vendored libraries and every module of ours
    assert {"/ui/vendor/marked.umd.js", "/ui/vendor/purify.min.js", "/ui/app.js", "/ui/views/task.js"} <= scripts
    assert "/ui/app.css" in served
    ours = {p.removeprefix("/ui/") for p in scripts if "/vendor/" not in p}
    on_disk = {str(p.relative_to(STATIC)) for p in STATIC.rglob("*.js") if "vendor" not in p.parts}
    assert ours == on_disk, "a module on disk is not reachable from the page, or one is missing"
    for path, response in served.items():
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        if path.endswith(".js"):
            assert "javascript" in response.headers["content-type"]
    assert "text/html" in served["/ui/"].headers["content-type"]


async def test_an_unknown_asset_is_a_404_not_the_page(tmp_path: Path) -> None:
    configs = write_configs(tmp_path / "configs")
    settings = inprocess_settings(tmp_path / "gw", config_dir=configs, roots=tmp_path)
    async with app_client(settings) as client:
        missing = await client.get("/ui/nothing-here.js")
        escape = await client.get("/ui/../gateway/settings.py")
    assert missing.status_code == 404
    assert escape.status_code == 404


def test_every_asset_is_in_the_package_data() -> None:
    """An installed gateway (not an editable checkout) serves the same page."""
    patterns = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "gateway.ui"
    ]
    for path in STATIC.rglob("*"):
        if path.is_file():
            relative = str(path.relative_to(STATIC.parent))
            assert any(fnmatch.fnmatch(relative, p) and relative.count("/") == p.count("/") for p in patterns), relative
