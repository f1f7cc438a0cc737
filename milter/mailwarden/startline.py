"""The one start-up line that says which configuration is in force: config file, rule packs, DKIM
keys, authserv-id, DNS, workers and stages. A postmaster reading the log after a restart sees what
the service runs with, not what they think they configured."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mailwarden import packaged
from mailwarden.bootstrap import Runtime
from mailwarden.config import Config


def rules_source(config: Config, rules_dir: Path | None) -> str:
    """The rule pack directories, the packaged ones marked so; "none" when no pack applies."""
    from mailwarden.rules.build import rule_dirs

    if not config.rules.enabled:
        return "off ([rules] enabled = false)"
    dirs = rule_dirs(config.rules, rules_dir)
    named = [f"packaged packs {d}" if packaged.is_packaged_rules(d) else str(d) for d in dirs]
    return " + ".join(named) or "none"


def keys_in_force(config: Config) -> str:
    from mailwarden.dkim.build import load_keys

    keys = load_keys(config)
    return " ".join(f"d={k.domain}/s={k.selector}/{k.key.algorithm}" for k in keys.values()) or "none"


def _absolute(name: str) -> str:
    return str(Path(name).absolute()) if Path(name).exists() else name


def dns_in_force(config: Config, zones: Sequence[str]) -> str:
    files = [_absolute(z) for z in (*config.dns.zones, *zones)]
    if files:
        return "static zones " + " ".join(files)
    servers = ",".join(config.dns.nameservers) or "resolv.conf"
    return f"live ({servers}, timeout {config.dns.timeout:g}s)"


def startup_line(config: Config, runtime: Runtime, rules_dir: Path | None, zones: Sequence[str],
                 workers: int) -> str:
    stages = runtime.pipeline.stages
    return (
        f"starting: config {_absolute(config.source)}; rules {rules_source(config, rules_dir)}; "
        f"keys {keys_in_force(config)}; authserv-id {runtime.authserv_id}; "
        f"dns {dns_in_force(config, zones)}; workers {workers}; "
        f"{len(stages)} stages: {' '.join(s.name for s in stages)}"
    )
