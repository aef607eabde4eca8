from tests.support.procs import prometheus_factory

__all__ = ["prometheus_factory"]
