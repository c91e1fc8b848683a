"""What every ``dockyard`` command shares: the instance options (``--config``,
``--data-dir``, ``--database-url``, accepted before or after the command name) and the
settings they select."""

from __future__ import annotations

from typing import Any

import click

from dockyard.config import ConfigError, Settings, load_settings


def settings_of(ctx: click.Context, **overrides: Any) -> Settings:
    base = ctx.find_root().meta.get("dockyard", {})
    config = base.pop("config", None)
    try:
        settings = load_settings(config, {**base, **overrides})
        check_webhook_settings(settings)
        if not 0 <= settings.job_nice <= 19:
            raise ConfigError(f"job_nice must be 0 to 19, not {settings.job_nice}")
        if settings.job_slots < 1:
            raise ConfigError(f"job_slots must be at least 1, not {settings.job_slots}")
        if settings.threads < 1:
            raise ConfigError(f"threads must be at least 1, not {settings.threads}")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    return settings


def check_webhook_settings(settings: Settings) -> None:
    """Refuse webhook settings Dockyard cannot use before anything starts."""
    from dockyard.webhooks.guard import AddressGuard
    from dockyard.webhooks.service import retry_delays

    AddressGuard.from_setting(settings.webhook_allow_networks)
    retry_delays(settings.webhook_retry_delays)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Keep an instance option, given before or after the command name."""
    if value is not None and param.name:
        ctx.find_root().meta.setdefault("dockyard", {})[param.name] = value


_INSTANCE_OPTIONS = (
    click.option(
        "--config",
        type=click.Path(dir_okay=False),
        expose_value=False,
        callback=_remember,
        help="TOML settings file (also DOCKYARD_CONFIG).",
    ),
    click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        expose_value=False,
        callback=_remember,
        help="Data directory (default ./data; also DOCKYARD_DATA_DIR).",
    ),
    click.option(
        "--database-url",
        expose_value=False,
        callback=_remember,
        help="Database URL (also DOCKYARD_DATABASE_URL).",
    ),
)


def instance_options(func: Any) -> Any:
    """--config, --data-dir and --database-url, accepted by every command."""
    for option in reversed(_INSTANCE_OPTIONS):
        func = option(func)
    return func
