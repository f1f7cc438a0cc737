"""DNS port implementations: the live resolver (dnspython) and static zones (tests, dry-run)."""
