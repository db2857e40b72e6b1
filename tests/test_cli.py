"""The command line: municipalities, platforms and deployments, database, demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.models import Deployment, Municipality, Registration

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def invoke(runner, *args, code=0):
    result = runner.invoke(args=list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_municipalities_import_is_idempotent(app, runner):
    out = invoke(runner, "municipalities", "import", "--country", "SE", str(DATA / "municipalities-se.csv"))
    assert "added 3" in out
    out = invoke(runner, "municipalities", "import", "--country", "SE", str(DATA / "municipalities-se.csv"))
    assert "added 0, updated 0, unchanged 3" in out
    out = invoke(runner, "municipalities", "import", "--country", "NO", str(DATA / "municipalities-no.csv"))
    assert "added 2" in out
    listing = invoke(runner, "municipalities", "list")
    assert "SE-1490\tBorås\t14" in listing and "NO-0301\tOslo\t03 Oslo" in listing and "SE-0114" in listing
    assert "NO-" not in invoke(runner, "municipalities", "list", "--country", "se")


def test_changed_names_are_updated(app, runner, tmp_path):
    invoke(runner, "municipalities", "import", "--country", "NO", str(DATA / "municipalities-no.csv"))
    changed = (DATA / "municipalities-no.csv").read_text("utf-8").replace("0301,Oslo,", "0301,Oslo - Oslove,")
    (tmp_path / "no.csv").write_text(changed, "utf-8")
    assert "updated 1" in invoke(runner, "municipalities", "import", "--country", "NO", str(tmp_path / "no.csv"))


@pytest.mark.parametrize("content, message", [
    ("kommunenummer,navn_norsk\n0301,Oslo\n", "missing column"),
    ("municipality_code,municipality_name,municipality_name_short,county_code\n149,Borås kommun,Borås,14\n",
     "four digits"),
    ("municipality_code,municipality_name,municipality_name_short,county_code\n1490,Borås kommun,,14\n", "empty name"),
    ("municipality_code,municipality_name,municipality_name_short,county_code\n1490,B,B,14\n1490,B,B,14\n", "twice"),
    ("municipality_code,municipality_name,municipality_name_short,county_code\n", "no municipality"),
])
def test_a_bad_file_imports_nothing(app, runner, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, "utf-8")
    country = "SE" if "municipality_code" in content else "NO"
    result = runner.invoke(args=["municipalities", "import", "--country", country, str(path)])
    assert result.exit_code != 0 and message in result.output
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Municipality)) == 0


@pytest.mark.skipif(not (SHARED / "se" / "municipalities.csv").exists(), reason="../shared/data not present")
def test_official_lists_import(app, runner):
    swedish, norwegian = str(SHARED / "se" / "municipalities.csv"), str(SHARED / "no" / "kommuner-no-357.csv")
    assert "added 290" in invoke(runner, "municipalities", "import", "--country", "SE", swedish)
    assert "added 357" in invoke(runner, "municipalities", "import", "--country", "NO", norwegian)
    assert "unchanged 290" in invoke(runner, "municipalities", "import", "--country", "SE", swedish)
    with new_session(app) as session:
        assert session.get(Municipality, "SE-1490").name == "Borås"
        assert session.get(Municipality, "NO-0301").name == "Oslo"
        assert session.get(Municipality, "SE-0114").county_code == "01"


PLATFORM = ["--name", "Borås Canvas", "--issuer", "https://canvas.instructure.com", "--client-id", "1000001",
            "--auth-login-url", "https://sso.canvaslms.com/api/lti/authorize_redirect",
            "--auth-token-url", "https://sso.canvaslms.com/login/oauth2/token",
            "--jwks-url", "https://sso.canvaslms.com/api/lti/security/jwks"]


def test_platforms_add_list_show_remove(app, runner):
    invoke(runner, "municipalities", "import", "--country", "SE", str(DATA / "municipalities-se.csv"))
    registration_id = invoke(runner, "platforms", "add", *PLATFORM).strip()
    assert registration_id.isdigit()
    assert "already" in invoke(runner, "platforms", "add", *PLATFORM, code=1)
    second = invoke(runner, "platforms", "add", *PLATFORM[:5], "1000002", *PLATFORM[6:],
                    "--token-audience", "https://sso.canvaslms.com/login/oauth2/token").strip()
    listing = invoke(runner, "platforms", "list")
    assert f"{registration_id}\tBorås Canvas\thttps://canvas.instructure.com\t1000001\tactive" in listing
    assert f"{second}\t" in listing

    out = invoke(runner, "platforms", "add-deployment", "--issuer", "https://canvas.instructure.com",
                 "--client-id", "1000001", "--deployment-id", "42:abc", "--municipality", "SE-1490")
    assert "active for SE-1490" in out
    out = invoke(runner, "platforms", "add-deployment", "--issuer", "https://canvas.instructure.com",
                 "--client-id", "1000001", "--deployment-id", "region", "--municipality", "SE-1490",
                 "--municipality", "se-0114", "--custom-param", "municipality_code")
    assert "active for SE-0114, SE-1490" in out
    shown = invoke(runner, "platforms", "show", registration_id)
    assert "42:abc\tactive\tSE-1490" in shown and "(custom parameter municipality_code)" in shown
    assert f"/lti/login/{registration_id}" in shown

    invoke(runner, "platforms", "remove", registration_id)
    assert "no registration" in invoke(runner, "platforms", "show", registration_id, code=1)
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Deployment)) == 0
        assert session.scalar(select(func.count()).select_from(Registration)) == 1


def test_add_deployment_refusals(app, runner):
    invoke(runner, "municipalities", "import", "--country", "SE", str(DATA / "municipalities-se.csv"))
    invoke(runner, "platforms", "add", *PLATFORM)
    base = ["platforms", "add-deployment", "--issuer", "https://canvas.instructure.com", "--client-id", "1000001",
            "--deployment-id", "d1"]
    assert "custom-param" in invoke(runner, *base, "--municipality", "SE-1490", "--municipality", "SE-0114", code=1)
    assert "unknown municipality SE-9999" in invoke(runner, *base, "--municipality", "SE-9999", code=1)
    assert "not a municipality id" in invoke(runner, *base, "--municipality", "1490", code=1)
    assert "no registration" in invoke(runner, "platforms", "add-deployment", "--issuer", "https://x.example",
                                       "--client-id", "1", "--deployment-id", "d", "--municipality", "SE-1490", code=1)
    assert "not an http(s) URL" in invoke(runner, "platforms", "add", *PLATFORM[:7], "ftp://x", *PLATFORM[8:], code=2)


def test_a_pending_deployment_is_approved_by_add_deployment(app, runner, launches, platform):
    """The unknown deployment a launch stored as pending becomes usable once bound."""
    from .conftest import error_code

    spec = launches.spec(deployment_id="new-site")
    assert error_code(launches.launch(spec)) == "deployment_pending"
    invoke(runner, "platforms", "add-deployment", "--issuer", platform.issuer, "--client-id", "kulturskola-sandbox",
           "--deployment-id", "new-site", "--municipality", "NO-0301")
    assert launches.launch(spec).status_code == 303


def test_db_upgrade_creates_the_schema(tmp_path, app_factory):
    app = app_factory({"DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db", "KEYS_DIR": str(tmp_path / "k")})
    runner = app.test_cli_runner()
    assert "database at head" in invoke(runner, "db", "upgrade")
    assert invoke(runner, "db", "current").strip().isdigit()
    assert "database at base" in invoke(runner, "db", "downgrade", "base")
    assert invoke(runner, "db", "current").strip() == "empty"


def test_demo_prepares_without_serving(app, runner):
    out = invoke(runner, "demo", "--no-serve")
    assert "demo ready: 9 municipalities" in out
    invoke(runner, "demo", "--no-serve")  # idempotent
    shown = invoke(runner, "platforms", "show", "1")
    assert "sandbox-SE-1490\tactive\tSE-1490" in shown and "sandbox-region" in shown


def test_demo_port_moves_the_tool_and_the_sandbox(app, runner):
    from lti_tool.cli.demo import use_port
    from lti_tool.config import settings
    from lti_tool.sandbox import get_platform
    from lti_tool.sandbox.idp_oidc import get_idp

    app.config.update(BASE_URL="http://127.0.0.1:5000", SANDBOX_BASE_URL="http://localhost:5000")  # the defaults
    use_port(app, 5077)
    assert settings(app).base_url == "http://127.0.0.1:5077"
    assert settings(app).sandbox_base_url == "http://localhost:5077"
    assert get_platform(app).base_url.startswith(settings(app).sandbox_base_url)
    assert get_idp(app).discovery_url.startswith(settings(app).sandbox_base_url)
    # A launch from the moved sandbox is the tool's own: its target_link_uri passes the launch's check.
    from lti_tool.domain.claims import is_own_url
    from lti_tool.lti import get_lti

    assert get_lti(app).validator.base_url == "http://127.0.0.1:5077"
    assert is_own_url(get_platform(app).target_link_uri, get_lti(app).validator.base_url)
    assert runner.invoke(args=["demo", "--help"]).output.count("--port") == 1
