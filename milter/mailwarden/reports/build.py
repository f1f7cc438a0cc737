"""The recorder `mailwarden serve` uses, from [reports] (and [dkim], for signed failure reports)."""

from __future__ import annotations

from mailwarden.config import Config
from mailwarden.core.ports import Resolver
from mailwarden.reports.recorder import Recorder

_RECORDERS: dict[tuple[object, ...], Recorder] = {}


def build_recorder(config: Config, resolver: Resolver) -> Recorder | None:
    """The recorder for [reports]; a runtime rebuilt with the same settings (a reload) gets the
    same one, so its queue and writer thread carry on instead of piling up."""
    section = config.reports
    if not section.store:
        return None
    key = (section, repr(config.dkim), config.dmarc.psl_file, config.dmarc.psl_private)
    if key not in _RECORDERS:
        _RECORDERS[key] = _new_recorder(config, resolver)
    return _RECORDERS[key]


def _new_recorder(config: Config, resolver: Resolver) -> Recorder:
    section = config.reports
    failures = None
    if section.failure_reports:
        from mailwarden.dmarc import psl
        from mailwarden.reports.deliver import Sender, dkim_signer
        from mailwarden.reports.failure import FailureSender
        from mailwarden.reports.schedule import metadata

        lst = psl.load(config.dmarc.psl_file, config.dmarc.psl_private)
        _, from_address = metadata(section)
        sender = Sender(from_address, section.relay, dkim_signer(config, resolver))
        failures = FailureSender(section, sender, resolver, lambda d: psl.org_domain(d, lst))
    return Recorder(section.store, section.queue_size, failures=failures,
                    failure_include=section.failure_include)
