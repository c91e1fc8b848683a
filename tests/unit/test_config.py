"""Settings: defaults, TOML, environment and flags, in that order of precedence."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from dockyard.config import ConfigError, Settings, load_settings
from dockyard.iam.actions import markdown_table


def test_defaults_need_no_configuration() -> None:
    s = load_settings(environ={})
    assert s.listen == "127.0.0.1:5000"
    assert s.data_dir == Path("data")
    assert s.region == "local"
    assert s.storage_backend == "filesystem"
    assert s.effective_database_url.startswith("sqlite:///")
    assert s.effective_database_url.endswith("/data/dockyard.db")


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text(
        'listen = "127.0.0.1:6000"\nregion = "from-file"\ntoken-ttl = 60\n'
        '[s3]\nbucket = "images"\npath-style = true\n'
    )
    env = {"DOCKYARD_REGION": "from-env", "DOCKYARD_S3_REGION": "eu-1"}
    s = load_settings(config, {"listen": "127.0.0.1:7000"}, environ=env)
    assert s.listen == "127.0.0.1:7000"
    assert s.region == "from-env"
    assert s.token_ttl == 60
    assert s.s3_bucket == "images"
    assert s.s3_path_style is True
    assert s.s3_region == "eu-1"
    assert s.storage_backend == "s3"


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('region = "x"\n')
    assert load_settings(environ={"DOCKYARD_CONFIG": str(config)}).region == "x"


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        ("nonsense = 1\n", {}, "unknown setting 'nonsense'"),
        ("listen = \n", {}, "not valid TOML"),
        ("", {"DOCKYARD_TOKEN_TTL": "soon"}, "token_ttl must be an integer"),
        ("", {"DOCKYARD_S3_PATH_STYLE": "maybe"}, "s3_path_style must be true or false"),
        ("", {"DOCKYARD_LISTEN": "localhost"}, "must be HOST:PORT"),
        ("", {"DOCKYARD_STORAGE": "tape"}, "storage must be"),
    ],
)
def test_bad_settings_are_refused_clearly(
    tmp_path: Path, content: str, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ=env)


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings("/nonexistent/dockyard.toml", environ={})


def test_postgres_url_is_used_verbatim() -> None:
    s = Settings(database_url="postgresql://u:p@127.0.0.1:5432/d")
    assert s.effective_database_url == "postgresql://u:p@127.0.0.1:5432/d"


def test_readme_lists_every_action_of_the_catalogue() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert markdown_table() in readme, "regenerate the README table from iam.actions"


def test_readme_lists_every_setting() -> None:
    """The settings table under "Running" names every setting's variable."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme[readme.index("## Running") : readme.index("### Scaled out")]
    missing = [
        f"DOCKYARD_{f.name.upper()}"
        for f in fields(Settings)
        if f.name != "extra" and f"`DOCKYARD_{f.name.upper()}`" not in table
    ]
    assert not missing, f"add to the README's settings table: {', '.join(missing)}"
