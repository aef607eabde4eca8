from tests.support.procs import alertmanager_factory, prometheus_factory

__all__ = ["alertmanager_factory", "prometheus_factory"]
